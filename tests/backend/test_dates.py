from datetime import UTC, date, datetime

import pytest

from backend.core.dates import end_of_day, parse_datetime, plausible_published, start_of_day


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2023-10-04", datetime(2023, 10, 4, tzinfo=UTC)),
        ("2023-10-04T12:30:00Z", datetime(2023, 10, 4, 12, 30, tzinfo=UTC)),
        ("2023-10-04T12:30:00+03:00", datetime(2023, 10, 4, 9, 30, tzinfo=UTC)),
        ("Oct. 4, 2023", datetime(2023, 10, 4, tzinfo=UTC)),
        (date(2023, 10, 4), datetime(2023, 10, 4, tzinfo=UTC)),
        (None, None),
        ("", None),
    ],
)
def test_parse_datetime_returns_aware_utc(raw: object, expected: datetime | None) -> None:
    assert parse_datetime(raw) == expected


def test_unreadable_date_is_an_error_naming_the_value() -> None:
    with pytest.raises(ValueError, match="not a date"):
        parse_datetime("not a date")


def test_day_bounds_include_the_whole_day() -> None:
    day = date(2023, 10, 4)
    assert end_of_day(day) - start_of_day(day) == 86399
    assert start_of_day(day) == int(datetime(2023, 10, 4, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    "raw",
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+01:00", 1e20, -1e20, True, False, "-1", "March 5", [2023]],
)
def test_what_no_calendar_holds_is_a_value_error_never_an_overflow(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_datetime(raw)


def test_plausible_publication_dates_run_from_1800_to_tomorrow() -> None:
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert plausible_published(datetime(1800, 1, 1, tzinfo=UTC), now)
    assert plausible_published(datetime(2024, 5, 2, 11, tzinfo=UTC), now)
    assert not plausible_published(datetime(1799, 12, 31, tzinfo=UTC), now)
    assert not plausible_published(datetime(2024, 5, 2, 13, tzinfo=UTC), now)


def test_day_bounds_hold_at_both_ends_of_the_calendar() -> None:
    assert end_of_day(date.max) - start_of_day(date.max) == 86399
    assert start_of_day(date.min) < end_of_day(date.min)
