from datetime import UTC, date, datetime

import pytest

from backend.core.dates import end_of_day, parse_datetime, start_of_day


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
