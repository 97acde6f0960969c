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
