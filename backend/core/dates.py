"""Date parsing and the time bounds used by filters; everything is UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from dateutil import parser as date_parser


def parse_datetime(value: object) -> datetime | None:
    """Parse an ISO date or datetime (or any common written form) to an aware UTC datetime.

    Naive values are taken as UTC: archives rarely say otherwise, and a guess of the
    server's local zone would make results depend on where Byline runs.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time.min)
    elif isinstance(value, int | float):
        parsed = datetime.fromtimestamp(float(value), tz=UTC)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            try:
                parsed = date_parser.parse(value, default=datetime(2000, 1, 1))
            except (ValueError, OverflowError) as exc:
                raise ValueError(f"unreadable date: {value!r}") from exc
    else:
        raise ValueError(f"unreadable date: {value!r}")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def start_of_day(day: date) -> int:
    return int(datetime.combine(day, time.min, tzinfo=UTC).timestamp())


def end_of_day(day: date) -> int:
    """Last second of ``day`` in UTC, so an article published on ``as_of`` itself counts."""
    return start_of_day(day + timedelta(days=1)) - 1


def today_utc() -> date:
    return datetime.now(UTC).date()
