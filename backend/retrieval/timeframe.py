"""Time in a question ("this week", "since May", "in October 2023") read as a window of days.

Every expression is resolved against ``as_of``, the day the question is asked, never against
the clock: "last week" in a question asked on 2023-06-09 means the week before that day. A
window that would start after ``as_of`` is not a publication window ("who will play in 2025?")
and is left alone, as is anything that is not a date ("before the election").

Choices a newsroom reader would expect, written down once:
- "this week" is the seven days ending ``as_of`` (a quiz asked on Monday about "this week"
  means the weekend too); "last week" the seven days before those.
- "this month" / "this year" run from the first day of the calendar month / year; "last
  month" / "last year" are the previous calendar ones; "the past month" is 30 days.
- A named day ("on October 7", "Oct. 7, 2023") covers that day and the next: reports of a
  day's events appear that day or the morning after.
- A month or year without a year or preposition is not read ("the 2022 World Cup" names an
  event, not when it was reported); with "in", "during", "since", "before", "after" it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta

from backend.core.text import tidy_spacing
from backend.core.types import DateWindow

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH = (
    r"(?P<month>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_UNIT_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
            "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "few": 3, "several": 3}  # fmt: skip
_NUMBER = r"(?P<n>\d{1,3}|" + "|".join(_NUMBERS) + r")"
_UNIT = r"(?P<unit>day|week|month|year|hour)s?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"


def _month_span(year: int, month: int) -> tuple[date, date]:
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def _latest_month(month: int, as_of: date) -> int:
    """The year of the most recent ``month`` not after ``as_of`` ("in October", asked in March)."""
    return as_of.year if month <= as_of.month else as_of.year - 1


def _number(raw: str) -> int:
    return int(raw) if raw.isdigit() else _NUMBERS[raw]


Span = tuple[date | None, date | None]
Rule = tuple[re.Pattern[str], Callable[[re.Match[str], date], Span | None]]


def _relative(m: re.Match[str], as_of: date) -> Span:
    word, unit = m.group("which").lower(), m.group("unit").lower()
    if unit == "weekend":
        saturday = as_of - timedelta(days=(as_of.weekday() - 5) % 7)
        if word in ("last", "previous") and as_of.weekday() >= 5:
            saturday -= timedelta(days=7)  # asked during a weekend, "last weekend" is the one before
        return saturday, saturday + timedelta(days=1)
    if word not in ("last", "previous"):
        if unit == "week" or word not in ("this", "earlier this"):
            return as_of - timedelta(days=_UNIT_DAYS[unit] - 1), as_of
        if unit == "month":
            return as_of.replace(day=1), as_of
        return date(as_of.year, 1, 1), as_of
    if unit == "week":
        return as_of - timedelta(days=13), as_of - timedelta(days=7)
    if unit == "month":
        previous = as_of.replace(day=1) - timedelta(days=1)
        return _month_span(previous.year, previous.month)
    return date(as_of.year - 1, 1, 1), date(as_of.year - 1, 12, 31)


def _count_back(m: re.Match[str], as_of: date) -> Span:
    """ "the past 3 days", "in the last two weeks": that many units up to ``as_of``."""
    n, unit = _number(m.group("n").lower()), m.group("unit").lower()
    days = -(-n // 24) if unit == "hour" else n * _UNIT_DAYS[unit]
    return as_of - timedelta(days=max(days, 1) - 1), as_of


def _ago(m: re.Match[str], as_of: date) -> Span:
    """ "two weeks ago": one unit's width centred that far back."""
    n, unit = _number(m.group("n").lower()), m.group("unit").lower()
    if unit == "hour":
        day = as_of - timedelta(days=n // 24)
        return day, day
    width = _UNIT_DAYS[unit]
    centre = as_of - timedelta(days=n * width)
    return centre - timedelta(days=width // 2), centre + timedelta(days=width // 2)


def _weekday(m: re.Match[str], as_of: date) -> Span:
    target = _WEEKDAYS.index(m.group("weekday").lower())
    back = (as_of.weekday() - target) % 7
    if m.group("which").lower() == "last" and back == 0:
        back = 7
    day = as_of - timedelta(days=back)
    return day, day


def _day(m: re.Match[str], as_of: date) -> Span | None:
    month = _MONTHS[m.group("month")[:3].lower()]
    year = int(m.group("year")) if m.group("year") else _latest_month(month, as_of)
    try:
        day = date(year, month, int(m.group("day")))
    except ValueError:
        return None
    if not m.group("year") and day > as_of:
        day = day.replace(year=year - 1)
    return day, day + timedelta(days=1)


def _iso(m: re.Match[str], as_of: date) -> Span | None:
    try:
        day = date.fromisoformat(m.group(0))
    except ValueError:
        return None
    return day, day + timedelta(days=1)


def _named_span(m: re.Match[str], as_of: date) -> tuple[date, date]:
    """A month (with or without year) or a year."""
    if m.group("month"):
        month = _MONTHS[m.group("month")[:3].lower()]
        year = int(m.group("year")) if m.group("year") else _latest_month(month, as_of)
        return _month_span(year, month)
    year = int(m.group("year_only"))
    return date(year, 1, 1), date(year, 12, 31)


def _with_preposition(m: re.Match[str], as_of: date) -> Span | None:
    start, end = _named_span(m, as_of)
    match " ".join(m.group("prep").lower().split()):
        case "since" | "from":
            return start, as_of
        case "before" | "until" | "till" | "prior to":
            return None, start - timedelta(days=1)
        case "after":
            return end + timedelta(days=1), as_of
        case "through" | "by":
            return None, end
        case _:
            return start, end


def _fixed(start_days: int, end_days: int) -> Callable[[re.Match[str], date], Span]:
    def span(m: re.Match[str], as_of: date) -> Span:
        return as_of - timedelta(days=start_days), as_of - timedelta(days=end_days)

    return span


_I = re.IGNORECASE
_RULES: list[Rule] = [
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), _iso),
    (
        re.compile(
            rf"\b(?:on\s+)?(?:{_MONTH}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+{_YEAR})?"
            rf"(?=\W|$))",
            _I,
        ),
        lambda m, as_of: _day(m, as_of) if m.group(0).lower().startswith("on") or m.group("year") else None,
    ),
    (
        re.compile(
            rf"\b(?:on\s+)?(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?\b",
            _I,
        ),
        lambda m, as_of: _day(m, as_of) if m.group(0).lower().startswith("on") or m.group("year") else None,
    ),
    (re.compile(r"\b(?:today|tonight|this morning|this evening)\b", _I), _fixed(0, 0)),
    (re.compile(r"\byesterday\b", _I), _fixed(1, 1)),
    (re.compile(r"\b(?:recently|lately|in recent (?:days|weeks))\b", _I), _fixed(29, 0)),
    (
        re.compile(
            rf"\b(?:in|over|during|within)?\s*(?:the\s+)?(?:past|last|previous)\s+{_NUMBER}\s+{_UNIT}\b",
            _I,
        ),
        _count_back,
    ),
    (re.compile(rf"\b{_NUMBER}\s+{_UNIT}\s+ago\b", _I), _ago),
    (
        re.compile(
            r"\b(?P<which>earlier this|in the last|in the past|over the past|over the|the past|the last|this|past|last"
            r"|previous)\s+(?P<unit>week|month|year|weekend)\b",
            _I,
        ),
        _relative,
    ),
    (re.compile(r"\b(?:(?P<which>on|last|this)\s+)(?P<weekday>" + "|".join(_WEEKDAYS) + r")\b", _I), _weekday),
    (
        re.compile(
            rf"\b(?P<prep>in|during|throughout|since|from|before|until|till|prior to|after|through|by)\s+"
            rf"(?:early\s+|late\s+|mid-?)?(?:{_MONTH}(?:\s+{_YEAR})?|(?P<year_only>(?:19|20)\d\d))\b",
            _I,
        ),
        _with_preposition,
    ),
]


def read_window(question: str, as_of: date) -> tuple[DateWindow | None, str]:
    """The time expression of ``question`` as a window, and the question without it.

    ``(None, question)`` when the question names no time that can be a publication window.
    """
    # Rules run from the most specific (a named day) to the loosest (a month after a preposition);
    # the first rule that reads a window wins, so "from Oct. 7, 2022" is a day, not October.
    for pattern, resolve in _RULES:
        for m in pattern.finditer(question):
            window = _clip(resolve(m, as_of), as_of, question[m.start() : m.end()].strip())
            if window is not None:
                return window, _without(question, m.start(), m.end())
    return None, question


def _without(question: str, start: int, end: int) -> str:
    return tidy_spacing(question[:start] + " " + question[end:])


def _clip(span: Span | None, as_of: date, phrase: str) -> DateWindow | None:
    if span is None:
        return None
    start, end = span
    if start is not None and start > as_of:
        return None  # the future: what the question is about, not when it was reported
    if start is None and (end is None or end >= as_of):
        return None  # "by 2050": everything up to as_of, which as_of says already
    if end is None or end > as_of:
        end = as_of
    if start is not None and start > end:
        return None
    return DateWindow(start=start, end=end, phrase=phrase)
