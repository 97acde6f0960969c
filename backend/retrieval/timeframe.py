"""Time in a question ("this week", "since May", "in October 2023") read as a window of days.

Every expression is resolved against ``as_of``, the day the question is asked, never against
the clock: "last week" in a question asked on 2023-06-09 means the week before that day. A
window that would start after ``as_of`` is not a publication window ("who will play in 2025?")
and is left alone, words and all ("late this year" asked in June is not "this year"), as is
anything that is not a date ("before the election").

Choices a newsroom reader would expect, written down once:
- "this week" is the seven days ending ``as_of`` (a quiz asked on Monday about "this week"
  means the weekend too); "last week" the seven days before those.
- "this month" / "this year" run from the first day of the calendar month / year; "last
  month" / "last year" are the previous calendar ones; "the past month" is 30 days.
- A named day ("on October 7", "Oct. 7, 2023") covers that day and the next: reports of a
  day's events appear that day or the morning after.
- A month or year without a year or preposition is not read ("the 2022 World Cup" names an
  event, not when it was reported); with "in", "during", "since", "before", "after" it is.
- "over the weekend", "this weekend", "this past weekend", "during the weekend" are the latest
  Saturday and Sunday, one under way included; "last weekend" asked during a weekend is the one before.
- "the day before yesterday" is that one day; "the other day" the seven days ending ``as_of``.
- Seasons are the northern meteorological ones: spring March-May, summer June-August, autumn
  (fall) September-November, winter December-February. A winter belongs to the year of its
  January and February, where most of its days fall: "winter 2023" is Dec. 2022-Feb. 2023, as
  is "winter 2022-23".
- "last summer" is the latest summer over before ``as_of``: asked in January or July 2024 it is
  2023's, asked in September 2024 it is 2024's. "this summer" is the current year's, clipped to
  ``as_of`` (asked in May it lies ahead, so is not read). "this winter" is the one under way, else
  the one that ended in February until August, and from September the coming one (not read).
  "in the spring", "during the summer" are the latest that has begun.
- A season is read only with "last", "this", a year, or a preposition and "the": "in winter"
  alone is mostly a habit ("where do storks go in winter?"), and "the Summer Olympics", "the
  Spring Festival", "the fall of Kabul" name things.
- A year's thirds: "early", "mid", "late" last year / this year / 2023 are January-April,
  May-August, September-December; "the start" / "the end" of a year is its first / last month.
  Halves and quarters ("the first half of 2023", "Q3 2023") are calendar ones, and so is "last
  quarter": the previous calendar quarter, the one companies reported, unlike "the past month",
  which counts 30 days.
- Prepositions before any of these read as they do before a month: "since last summer" runs
  from its first day to ``as_of``, "before late 2022" ends on Aug. 31, 2022.
"""

from __future__ import annotations

import calendar
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
_PREP = r"(?:(?P<prep>in|during|throughout|over|since|from|before|until|till|prior\s+to|after|through|by)\s+)?"
# A year as "last year", "this year", "the year" or "2023", for the parts of one.
_YEAR_REF = rf"(?:(?P<ref>the|this|last|previous|current)\s+year|{_YEAR})\b"


def _month_span(year: int, month: int) -> tuple[date, date]:
    # Not "the first of the next month, less a day": December 9999 has no next month.
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


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


def _after_preposition(prep: str | None, span: tuple[date, date], as_of: date) -> Span:
    start, end = span
    match " ".join((prep or "").lower().split()):
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


def _with_preposition(m: re.Match[str], as_of: date) -> Span | None:
    return _after_preposition(m.group("prep"), _named_span(m, as_of), as_of)


def _prepositioned(
    span: Callable[[re.Match[str], date], tuple[date, date] | None],
) -> Callable[[re.Match[str], date], Span | None]:
    """A rule whose phrase may follow a preposition ("since last summer", "by the end of 2022")."""

    def resolve(m: re.Match[str], as_of: date) -> Span | None:
        days = span(m, as_of)
        return None if days is None else _after_preposition(m.group("prep"), days, as_of)

    return resolve


def _months_of(year: int, first: int, last: int) -> tuple[date, date]:
    return date(year, first, 1), _month_span(year, last)[1]


_SEASON_FIRST_MONTH = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}
_LAST_SEASONS = ("last", "previous", "past", "the past", "this past")


def _season_span(season: str, year: int) -> tuple[date, date] | None:
    """``season`` of ``year``; the winter whose January is in ``year``. None outside the calendar."""
    first = _SEASON_FIRST_MONTH[season]
    try:
        return date(year - (first == 12), first, 1), _month_span(year, first % 12 + 2)[1]
    except ValueError:  # winter 1 or a season of 10000: days before 0001-01-01 or after 9999-12-31
        return None


def _is_next_year(year: int, raw: str) -> bool:
    """ "2022-23" and "2022/2023" name one winter."""
    return int(raw) == (year + 1 if len(raw) == 4 else (year + 1) % 100)


def _season(m: re.Match[str], as_of: date) -> tuple[date, date] | None:
    season = m.group("season")
    if season[0].isupper() and re.match(r"\s+[A-Z]", m.string[m.end() :]):
        return None  # "Summer Olympics", "Spring Festival", "Winter Palace": a name, not a time
    season = season.lower()
    if m.group("year"):
        year = int(m.group("year"))
        if season == "winter" and m.group("year2") and _is_next_year(year, m.group("year2")):
            year += 1
        return _season_span(season, year)
    which = " ".join((m.group("which") or "").lower().split())
    if which == "this":
        # A winter straddles the year change; outside one, the nearer: just ended, or, from autumn, ahead.
        return _season_span(season, as_of.year + (season == "winter" and as_of.month >= 9))
    newest_first = [s for y in (as_of.year + 1, as_of.year, as_of.year - 1) if (s := _season_span(season, y))]
    if which in _LAST_SEASONS:
        return next((s for s in newest_first if s[1] < as_of), None)
    if which != "the" or not m.group("prep"):
        return None  # "in winter" is a habit, "the summer" without "in" / "during" / "over" a subject
    return next((s for s in newest_first if s[0] <= as_of), None)


_YEAR_PARTS = {
    ("", "early"): (1, 4), ("", "mid"): (5, 8), ("", "late"): (9, 12),
    ("", "start"): (1, 1), ("", "beginning"): (1, 1), ("", "end"): (12, 12),
    ("half", "first"): (1, 6), ("half", "1st"): (1, 6), ("half", "second"): (7, 12), ("half", "2nd"): (7, 12),
    ("quarter", "final"): (10, 12), ("quarter", "last"): (10, 12),
} | {
    ("quarter", name): (3 * n - 2, 3 * n)
    for n, names in enumerate((("first", "1st", "1"), ("second", "2nd", "2"), ("third", "3rd", "3"),
                               ("fourth", "4th", "4")), start=1)
    for name in names
}  # fmt: skip


def _part_of_year(m: re.Match[str], as_of: date) -> tuple[date, date] | None:
    """ "late last year", "the end of 2022", "the first half of this year", "Q3 2023"."""
    unit = (m.groupdict().get("unit") or "").lower()
    months = _YEAR_PARTS.get(("quarter" if unit == "q" else unit, m.group("part").lower()))
    if months is None:
        return None  # "the third half of 2023"
    return _months_of(_year_of(m, as_of), *months)


def _year_of(m: re.Match[str], as_of: date) -> int:
    if m.group("year"):
        return int(m.group("year"))
    return as_of.year - (m.group("ref").lower() in ("last", "previous"))


def _quarter(m: re.Match[str], as_of: date) -> tuple[date, date]:
    """ "last quarter": the calendar quarter before the one ``as_of`` is in; "this quarter" that one."""
    first = date(as_of.year, (as_of.month - 1) // 3 * 3 + 1, 1)
    if m.group("which").lower() in ("this", "current"):
        return _months_of(first.year, first.month, first.month + 2)
    previous = first - timedelta(days=1)
    return _months_of(previous.year, previous.month - 2, previous.month)


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
    (re.compile(r"\b(?:earlier\s+)?(?:today|tonight|this morning|this evening)\b", _I), _fixed(0, 0)),
    (re.compile(r"\b(?:the\s+)?day\s+before\s+yesterday\b", _I), _fixed(2, 2)),
    (re.compile(r"\byesterday\b", _I), _fixed(1, 1)),
    (re.compile(r"\bthe\s+other\s+day\b", _I), _fixed(6, 0)),
    (re.compile(r"\b(?:recently|lately|in recent (?:days|weeks))\b", _I), _fixed(29, 0)),
    # Parts of a year before "last year" / "in 2023" alone, which they contain.
    (
        re.compile(rf"\b{_PREP}(?P<part>early|mid|late)(?:-|\s+)(?:in\s+)?{_YEAR_REF}", _I),
        _prepositioned(_part_of_year),
    ),
    (
        re.compile(rf"\b{_PREP}(?:at\s+)?the\s+(?P<part>start|beginning|end)\s+of\s+{_YEAR_REF}", _I),
        _prepositioned(_part_of_year),
    ),
    (
        re.compile(
            rf"\b{_PREP}(?:the\s+)?(?P<part>first|second|third|fourth|final|last|1st|2nd|3rd|4th)\s+"
            rf"(?P<unit>half|quarter)\s+of\s+{_YEAR_REF}",
            _I,
        ),
        _prepositioned(_part_of_year),
    ),
    (re.compile(rf"\b{_PREP}(?P<unit>q)(?P<part>[1-4])\s+(?:of\s+)?{_YEAR_REF}", _I), _prepositioned(_part_of_year)),
    (
        re.compile(
            # Not after "the"/"its"/"their": "the last fall in prices" is a drop, not an autumn.
            rf"\b{_PREP}(?<!\bthe\s)(?<!\bits\s)(?<!\btheir\s)"
            rf"(?:(?P<which>this\s+past|the\s+past|the|last|past|previous|this)\s+)?"
            rf"(?P<season>spring|summer|autumn|fall|winter)"
            rf"(?:\s+(?:of\s+)?{_YEAR}(?:\s*[-/–]\s*(?P<year2>\d\d(?:\d\d)?))?)?\b"
            r"(?!-|\s+(?:of|olympics?|games|festival|solstice|equinox|sports?)\b)",
            _I,
        ),
        _prepositioned(_season),
    ),
    (
        re.compile(
            rf"\b{_PREP}(?:the\s+)?(?P<which>this\s+past|last|previous|past|this|current)\s+quarter\b(?!\s+of\b)",
            _I,
        ),
        _prepositioned(_quarter),
    ),
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
            r"\b(?P<which>earlier this|in the last|in the past|over the past|over the|the past|the last|this past|this"
            r"|past|last|previous)\s+(?P<unit>week|month|year|weekend)\b",
            _I,
        ),
        _relative,
    ),
    (re.compile(r"\b(?P<which>during the|at the|on the)\s+(?P<unit>weekend)\b(?!\s+of\b)", _I), _relative),
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
    # A phrase read as the future stays unread as a whole: "late this year" asked in June is not
    # "this year" to a looser rule.
    ahead: list[tuple[int, int]] = []
    for pattern, resolve in _RULES:
        for m in pattern.finditer(question):
            if any(m.start() < end and start < m.end() for start, end in ahead):
                continue
            try:
                span = resolve(m, as_of)
                window = _clip(span, as_of, question[m.start() : m.end()].strip())
            except (OverflowError, ValueError):  # "last year" asked on 0001-01-01: no such days exist
                continue
            if window is not None:
                return window, _without(question, m.start(), m.end())
            if span is not None:
                ahead.append(m.span())
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
