"""Date parsing and the time bounds used by filters; everything is UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from dateutil import parser as date_parser

# Publication dates outside [EARLIEST_PUBLISHED, now + FUTURE_SLACK] are not believed: a record that says
# 0001-01-01, 1970-01-01 from a boolean or 9999-12-31 names no real publication day (FUTURE_SLACK covers
# time zones ahead of UTC and a clock a little fast).
EARLIEST_PUBLISHED = datetime(1800, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)

# Two defaults that differ in every field: what dateutil fills in from them was not in the text.
_DEFAULTS = (datetime(2000, 1, 1), datetime(2001, 2, 2))


def parse_datetime(value: object) -> datetime | None:
    """Parse an ISO date or datetime (or any common written form) to an aware UTC datetime.

    Naive values are taken as UTC: archives rarely say otherwise, and a guess of the
    server's local zone would make results depend on where Byline runs. Anything that is not a
    date, names no year, or lies beyond what ``datetime`` holds raises ``ValueError``.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):  # an int to Python, never a date to a person
        raise ValueError(f"not a date: {value!r}")
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time.min)
    elif isinstance(value, int | float):
        try:
            parsed = datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"date out of range: {value!r}") from exc
    elif isinstance(value, str):
        parsed = _parse_text(value)
    else:
        raise ValueError(f"unreadable date: {value!r}")
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (OverflowError, ValueError) as exc:  # 9999-12-31T23:59:59-14:00 is past year 9999 in UTC
        raise ValueError(f"date out of range: {value!r}") from exc


def _parse_text(value: str) -> datetime:
    text = value.strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    try:
        first, second = (date_parser.parse(text, default=d) for d in _DEFAULTS)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"unreadable date: {value!r}") from exc
    if first.year != second.year:  # "-1", "March 5": no year given, so no day can be meant
        raise ValueError(f"unreadable date (no year): {value!r}")
    return first


def plausible_published(when: datetime, now: datetime | None = None) -> bool:
    """Whether ``when`` can be a publication date: not before 1800, not after tomorrow."""
    latest = (now or datetime.now(UTC)) + FUTURE_SLACK
    return EARLIEST_PUBLISHED <= when <= latest


def start_of_day(day: date) -> int:
    return int(datetime.combine(day, time.min, tzinfo=UTC).timestamp())


def end_of_day(day: date) -> int:
    """Last second of ``day`` in UTC, so an article published on ``as_of`` itself counts.

    Counted from the day's start, not from the next day's, which does not exist after 9999-12-31."""
    return start_of_day(day) + 86_399


def today_utc() -> date:
    return datetime.now(UTC).date()
