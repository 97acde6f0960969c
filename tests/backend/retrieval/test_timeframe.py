from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.retrieval.timeframe import read_window

FRIDAY = date(2023, 6, 9)


@pytest.mark.parametrize(
    ("question", "start", "end"),
    [
        ("Which merger was announced this week?", date(2023, 6, 3), FRIDAY),
        ("Who resigned last week?", date(2023, 5, 27), date(2023, 6, 2)),
        ("What happened yesterday in Kirkuk?", date(2023, 6, 8), date(2023, 6, 8)),
        ("What did the council decide today?", FRIDAY, FRIDAY),
        ("Which bills passed this month?", date(2023, 6, 1), FRIDAY),
        ("Which bills passed last month?", date(2023, 5, 1), date(2023, 5, 31)),
        ("What happened in October?", date(2022, 10, 1), date(2022, 10, 31)),  # the latest October
        ("What happened in June?", date(2023, 6, 1), FRIDAY),  # the current month, up to as_of
        ("What happened in October 2021?", date(2021, 10, 1), date(2021, 10, 31)),
        ("Who won elections in 2023?", date(2023, 1, 1), FRIDAY),
        ("Who won elections in 2022?", date(2022, 1, 1), date(2022, 12, 31)),
        ("What changed since May?", date(2023, 5, 1), FRIDAY),
        ("What was said before May 2023?", None, date(2023, 4, 30)),
        ("What happened after March?", date(2023, 4, 1), FRIDAY),
        ("What happened on October 7?", date(2022, 10, 7), date(2022, 10, 8)),
        ("Reports from Oct. 7, 2022 about the attack", date(2022, 10, 7), date(2022, 10, 8)),
        ("What happened on 3 June 2023?", date(2023, 6, 3), date(2023, 6, 4)),
        ("News of 2023-05-01", date(2023, 5, 1), date(2023, 5, 2)),
        ("What happened in the past 3 days?", date(2023, 6, 7), FRIDAY),
        ("Deals in the last two weeks", date(2023, 5, 27), FRIDAY),
        ("What happened two weeks ago?", date(2023, 5, 23), date(2023, 5, 29)),
        ("Who spoke last Friday?", date(2023, 6, 2), date(2023, 6, 2)),
        ("Who spoke on Monday?", date(2023, 6, 5), date(2023, 6, 5)),
        ("What happened over the weekend?", date(2023, 6, 3), date(2023, 6, 4)),
        ("Which talks happened this year?", date(2023, 1, 1), FRIDAY),
        ("Which talks happened last year?", date(2022, 1, 1), date(2022, 12, 31)),
        ("Which company recently cut jobs?", date(2023, 5, 11), FRIDAY),
    ],
)
def test_time_expressions_resolve_against_as_of(question: str, start: date | None, end: date) -> None:
    window, _ = read_window(question, FRIDAY)
    assert window is not None
    assert (window.start, window.end) == (start, end)
    assert window.phrase.lower() in question.lower()


@pytest.mark.parametrize(
    "question",
    [
        "What did the minister say before the election?",  # not a date
        "Who scored in the 2022 World Cup final?",  # a year naming an event, no preposition
        "Which country aims for net zero by 2050?",  # "by" a future year bounds nothing before as_of
        "Who will play in 2025?",  # the future is what the question is about, not when it was reported
        "Who commands the Qaratapa-Hamrin sector?",
        "What is the 7 October attack?",
        "What may happen to prices?",  # "may" is not May without a preposition
    ],
)
def test_non_dates_are_left_alone(question: str) -> None:
    assert read_window(question, FRIDAY) == (None, question)


def test_the_time_words_leave_the_query() -> None:
    window, rest = read_window("Which two sports entities announced a stunning merger this week?", FRIDAY)
    assert window is not None and window.phrase == "this week"
    assert rest == "Which two sports entities announced a stunning merger?"


def test_during_a_weekend_last_weekend_is_the_one_before() -> None:
    sunday = date(2023, 6, 11)
    this, _ = read_window("What happened this weekend?", sunday)
    last, _ = read_window("What happened last weekend?", sunday)
    assert this is not None and last is not None
    assert (this.start, this.end) == (date(2023, 6, 10), sunday)
    assert (last.start, last.end) == (date(2023, 6, 3), date(2023, 6, 4))


PHRASES = [
    "this week", "last week", "yesterday", "today", "this month", "last month", "this year", "last year",
    "in October", "in 2021", "since May", "before March 2022", "after April", "in the past 5 days",
    "three weeks ago", "last Tuesday", "on Sunday", "recently", "over the weekend", "in the last 2 months",
    "last summer", "this winter", "in the summer of 2023", "during the spring", "this past weekend",
    "late last year", "at the end of last year", "last quarter", "in the first half of 2023",
    "the day before yesterday", "the other day",
]  # fmt: skip


@given(
    as_of=st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31)),
    phrase=st.sampled_from(PHRASES),
    subject=st.sampled_from(["Who resigned", "What did the council decide", "Which outlet reported the fire"]),
)
def test_every_window_ends_by_as_of_and_is_ordered(as_of: date, phrase: str, subject: str) -> None:
    window, rest = read_window(f"{subject} {phrase}?", as_of)
    if window is None:  # only when the whole window would lie after as_of
        return
    assert window.end is not None and window.end <= as_of
    if window.start is not None:
        assert window.start <= window.end
    assert rest.startswith(subject)
    assert phrase.split()[-1].lower() not in rest.lower()


MONDAY = date(2023, 6, 12)


@pytest.mark.parametrize(
    ("question", "as_of", "start", "end"),
    [
        # Seasons: northern meteorological, resolved against as_of.
        ("What happened last summer?", date(2024, 1, 15), date(2023, 6, 1), date(2023, 8, 31)),
        ("What happened last summer?", date(2024, 7, 10), date(2023, 6, 1), date(2023, 8, 31)),  # during summer
        ("What happened last summer?", date(2024, 8, 31), date(2023, 6, 1), date(2023, 8, 31)),  # its last day
        ("What happened last summer?", date(2024, 9, 1), date(2024, 6, 1), date(2024, 8, 31)),  # just over
        ("What happened this summer?", date(2024, 7, 10), date(2024, 6, 1), date(2024, 7, 10)),  # clipped
        ("What happened this summer?", date(2024, 10, 10), date(2024, 6, 1), date(2024, 8, 31)),
        ("Who resigned last spring?", date(2024, 1, 15), date(2023, 3, 1), date(2023, 5, 31)),
        ("Who resigned last autumn?", date(2024, 1, 15), date(2023, 9, 1), date(2023, 11, 30)),
        ("Who resigned last fall?", date(2024, 1, 15), date(2023, 9, 1), date(2023, 11, 30)),
        ("Who resigned last fall?", date(2023, 10, 1), date(2022, 9, 1), date(2022, 11, 30)),  # during autumn
        # Winter spans the year change.
        ("What froze last winter?", date(2024, 1, 15), date(2022, 12, 1), date(2023, 2, 28)),  # during winter
        ("What froze last winter?", date(2023, 12, 15), date(2022, 12, 1), date(2023, 2, 28)),  # during winter
        ("What froze last winter?", date(2024, 3, 15), date(2023, 12, 1), date(2024, 2, 29)),  # leap February
        ("What froze this winter?", date(2024, 1, 15), date(2023, 12, 1), date(2024, 1, 15)),
        ("What froze this winter?", date(2023, 12, 15), date(2023, 12, 1), date(2023, 12, 15)),
        ("What froze this winter?", date(2024, 4, 15), date(2023, 12, 1), date(2024, 2, 29)),  # just ended
        ("Who won in the summer of 2023?", date(2024, 1, 15), date(2023, 6, 1), date(2023, 8, 31)),
        ("Floods of summer 2023", date(2024, 1, 15), date(2023, 6, 1), date(2023, 8, 31)),
        ("Gas prices in the winter of 2022-23", date(2024, 1, 15), date(2022, 12, 1), date(2023, 2, 28)),
        ("Storms in winter 2023", date(2024, 1, 15), date(2022, 12, 1), date(2023, 2, 28)),  # January's year
        ("What was agreed during the spring?", date(2024, 1, 15), date(2023, 3, 1), date(2023, 5, 31)),
        ("What was agreed during the spring?", date(2024, 4, 15), date(2024, 3, 1), date(2024, 4, 15)),  # under way
        ("Which deals closed over the summer?", date(2024, 9, 9), date(2024, 6, 1), date(2024, 8, 31)),
        ("Who has resigned since last summer?", date(2024, 1, 15), date(2023, 6, 1), date(2024, 1, 15)),
        # Weekends.
        ("What happened over the weekend?", MONDAY, date(2023, 6, 10), date(2023, 6, 11)),
        ("What happened this weekend?", MONDAY, date(2023, 6, 10), date(2023, 6, 11)),
        ("What happened last weekend?", MONDAY, date(2023, 6, 10), date(2023, 6, 11)),
        ("What happened this past weekend?", MONDAY, date(2023, 6, 10), date(2023, 6, 11)),
        ("What happened during the weekend?", MONDAY, date(2023, 6, 10), date(2023, 6, 11)),
        # Parts of a week, month, year.
        ("Who resigned earlier this week?", FRIDAY, date(2023, 6, 3), FRIDAY),
        ("Who resigned earlier this month?", FRIDAY, date(2023, 6, 1), FRIDAY),
        ("Who resigned earlier this year?", FRIDAY, date(2023, 1, 1), FRIDAY),
        ("Who resigned late last year?", FRIDAY, date(2022, 9, 1), date(2022, 12, 31)),
        ("Who resigned early last year?", FRIDAY, date(2022, 1, 1), date(2022, 4, 30)),
        ("Who resigned late this year?", date(2023, 10, 9), date(2023, 9, 1), date(2023, 10, 9)),
        ("Who resigned in late 2022?", FRIDAY, date(2022, 9, 1), date(2022, 12, 31)),
        ("What changed since early 2022?", FRIDAY, date(2022, 1, 1), FRIDAY),
        ("Who resigned at the start of the year?", FRIDAY, date(2023, 1, 1), date(2023, 1, 31)),
        ("Who resigned at the end of last year?", FRIDAY, date(2022, 12, 1), date(2022, 12, 31)),
        ("Which firms lost money last quarter?", FRIDAY, date(2023, 1, 1), date(2023, 3, 31)),
        ("Which firms lost money in the last quarter?", date(2023, 2, 9), date(2022, 10, 1), date(2022, 12, 31)),
        ("Which firms lost money this quarter?", FRIDAY, date(2023, 4, 1), FRIDAY),
        ("Which firms lost money in the last quarter of 2022?", FRIDAY, date(2022, 10, 1), date(2022, 12, 31)),
        ("Which firms lost money in Q3 2022?", FRIDAY, date(2022, 7, 1), date(2022, 9, 30)),
        ("Who grew in the first half of 2023?", date(2023, 9, 9), date(2023, 1, 1), date(2023, 6, 30)),
        ("Who grew in the first half of 2023?", FRIDAY, date(2023, 1, 1), FRIDAY),  # under way
        # Days.
        ("What happened the day before yesterday?", FRIDAY, date(2023, 6, 7), date(2023, 6, 7)),
        ("What happened the day before yesterday?", date(2024, 1, 1), date(2023, 12, 30), date(2023, 12, 30)),
        ("What did the minister say the other day?", FRIDAY, date(2023, 6, 3), FRIDAY),
        ("What happened a week ago?", FRIDAY, date(2023, 5, 30), date(2023, 6, 5)),
    ],
)
def test_seasons_weekends_and_parts_of_a_year(question: str, as_of: date, start: date, end: date) -> None:
    window, rest = read_window(question, as_of)
    assert window is not None
    assert (window.start, window.end) == (start, end)
    assert window.phrase.lower() in question.lower()
    assert window.phrase.lower() not in rest.lower()


@pytest.mark.parametrize(
    ("question", "phrase", "rest"),
    [
        ("Who spoke the day before yesterday?", "the day before yesterday", "Who spoke?"),
        ("Who resigned at the end of last year?", "at the end of last year", "Who resigned?"),
        ("Which storms hit Europe in the winter of 2022-23?", "in the winter of 2022-23", "Which storms hit Europe?"),
        ("What happened this past weekend in Kirkuk?", "this past weekend", "What happened in Kirkuk?"),
    ],
)  # fmt: skip
def test_the_whole_phrase_leaves_the_query(question: str, phrase: str, rest: str) -> None:
    window, left = read_window(question, FRIDAY)
    assert window is not None and window.phrase == phrase
    assert left == rest


@pytest.mark.parametrize(
    ("question", "as_of"),
    [
        ("Who won the Summer Olympics?", FRIDAY),  # a name
        ("What happened during the Spring Festival?", FRIDAY),
        ("What followed the fall of Kabul?", FRIDAY),
        ("What caused the last fall in prices?", FRIDAY),  # a drop, not an autumn
        ("Where do storks go in winter?", FRIDAY),  # a habit
        ("Who scored in the last quarter of the game?", FRIDAY),
        ("What happened this summer?", date(2024, 5, 10)),  # summer lies ahead
        ("Will it snow this winter?", date(2023, 11, 15)),  # the coming winter
        ("Who will resign late this year?", FRIDAY),  # not "this year" instead
        ("What is planned for the second half of this year?", FRIDAY),
        ("Which firms will cut jobs by the end of the year?", FRIDAY),
    ],
)
def test_names_habits_and_the_future_are_left_alone(question: str, as_of: date) -> None:
    assert read_window(question, as_of) == (None, question)


NEW_PHRASES = [
    "last summer", "this summer", "last spring", "last autumn", "last fall", "last winter", "this winter",
    "in the summer of 2023", "summer 2023", "during the spring", "in the winter of 2022-23", "since last summer",
    "over the weekend", "this weekend", "last weekend", "this past weekend", "earlier this year", "earlier this month",
    "earlier this week", "late last year", "early last year", "late this year", "at the start of the year",
    "at the end of last year", "last quarter", "the last quarter", "in the first half of 2023", "Q3 2022",
    "the day before yesterday", "the other day", "a week ago",
]  # fmt: skip


@pytest.mark.parametrize("as_of", [date.min, date(1, 1, 5), date(1, 3, 1), date(9999, 12, 31)])
@pytest.mark.parametrize("phrase", NEW_PHRASES)
def test_the_ends_of_the_calendar_raise_nothing(phrase: str, as_of: date) -> None:
    window, _ = read_window(f"Who resigned {phrase}?", as_of)
    if window is not None:
        assert window.end is not None and window.end <= as_of
        assert window.start is None or window.start <= window.end


@given(as_of=st.dates(), phrase=st.sampled_from(PHRASES + NEW_PHRASES))
def test_any_day_of_the_calendar_reads_without_error(as_of: date, phrase: str) -> None:
    window, _ = read_window(f"What happened {phrase}?", as_of)
    if window is not None:
        assert window.end is not None and window.end <= as_of
        assert window.start is None or window.start <= window.end
