from datetime import date

import pytest

from backend.retrieval.reading import OutletMatcher, QueryReader, outlet_aliases

OUTLETS = ["Reuters", "The Verge", "BBC", "theweek.co.uk", "usatoday.com", "Al Jazeera", "Apple Daily"]


@pytest.mark.parametrize(
    ("question", "outlets"),
    [
        ("What happened in Gaza, according to Reuters?", ("Reuters",)),
        ("What did The Verge report about the phone?", ("The Verge",)),
        ("What did the verge report?", ()),  # not capitalised: a verge, not The Verge
        ("What was said in the BBC about the strike?", ("BBC",)),
        ("Reuters reported what about the talks?", ("Reuters",)),
        ("What did USA Today say about the storm?", ("usatoday.com",)),
        ("What did The Week report on the budget?", ("theweek.co.uk",)),
        ("What happened in the week before the vote?", ()),
        ("according to al jazeera", ()),
        ("What does Al Jazeera say about Sudan?", ("Al Jazeera",)),
        ("Which outlet first broke the story?", ()),
        ("What did Bloomberg report?", ()),  # not an outlet of this archive
    ],
)
def test_outlets_named_as_sources_are_found(question: str, outlets: tuple[str, ...]) -> None:
    assert OutletMatcher(OUTLETS).find(question)[0] == outlets


def test_outlet_names_match_without_case_punctuation_or_the() -> None:
    assert {"verge", "theverge"} <= outlet_aliases("The Verge")
    assert "theweek" in outlet_aliases("theweek.co.uk")
    found, phrase = OutletMatcher(["THE-VERGE"]).find("What did The Verge report?")
    assert found == ("THE-VERGE",) and phrase == "The Verge"


def test_the_reader_returns_window_outlets_and_the_query_without_time_words() -> None:
    calls = []

    def outlets() -> list[str]:
        calls.append(1)
        return OUTLETS

    reader = QueryReader(outlets, refresh_s=3600)
    reading = reader.read("What did Reuters report last week about Kirkuk?", date(2023, 6, 9))
    assert reading.sources == ("Reuters",) and reading.source_phrase == "Reuters"
    assert reading.window is not None and (reading.window.start, reading.window.end) == (
        date(2023, 5, 27),
        date(2023, 6, 2),
    )
    assert reading.text == "What did Reuters report about Kirkuk?"
    reader.read("anything", None)
    assert len(calls) == 1  # the outlet list is read once, not per question
    assert reader.read("What happened last week?", None).window is None  # no as_of, no window
