from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.core.dates import parse_datetime
from ingest.clean import clean_text
from ingest.normalize import RecordError, article_from_record
from tests.conftest import SHARED


def test_field_aliases_and_unknown_fields_kept_as_metadata() -> None:
    article, warnings = article_from_record(
        {
            "headline": "  A  title ",
            "body": "Some text.",
            "link": "https://www.example.org/a",
            "date": "2023-10-04T10:00:00+02:00",
            "author": "Ann Lee and Bo Chen",
            "section": "world",
            "tags": ["x", "y"],
        }
    )
    assert warnings == []
    assert article.title == "A title"
    assert article.text == "Some text."
    assert article.published_at == datetime(2023, 10, 4, 8, tzinfo=UTC)
    assert article.authors == ("Ann Lee", "Bo Chen")
    assert article.source == "example.org"  # from the URL when the record names no outlet
    assert article.metadata == {"section": "world", "tags": ["x", "y"]}


def test_ids_are_given_or_derived_stably_from_url_then_text() -> None:
    given, _ = article_from_record({"id": 7, "text": "t", "url": "https://e.org/1"})
    by_url, _ = article_from_record({"text": "one", "url": "https://e.org/1"})
    by_url_again, _ = article_from_record({"text": "two", "url": "https://e.org/1"})
    by_text, _ = article_from_record({"text": "same words"})
    by_text_again, _ = article_from_record({"text": "same   words"})
    assert given.id == "7"
    assert by_url.id == by_url_again.id != by_text.id
    assert by_text.id == by_text_again.id


def test_unreadable_date_keeps_the_article_undated_with_a_warning() -> None:
    article, warnings = article_from_record({"text": "t", "published_at": "sometime soon"})
    assert article.published_at is None
    assert article.metadata["published_at_raw"] == "sometime soon"
    assert warnings and "sometime soon" in warnings[0]


@pytest.mark.parametrize("record", [{"title": "no text"}, {"text": 5}, {"text": " \n\x00 "}])
def test_records_without_text_are_rejected_with_a_reason(record: dict[str, object]) -> None:
    with pytest.raises(RecordError, match="text"):
        article_from_record(record)


def test_clean_text_drops_repeated_paragraphs_and_control_characters() -> None:
    raw = "Caption line.\r\nCaption line.\n\nBody\x00 text  here.\n\n\ncaption   LINE."
    assert clean_text(raw) == "Caption line.\n\nBody text here."


@pytest.mark.parametrize(
    "furniture",
    [
        "Read more: Iraq's budget talks stall",
        "Share this article",
        "Facebook Twitter Email",
        "Home | World | Business | Sport",
        "Follow us on Twitter",
        "Sign up for our free newsletter today",
        "© 2023 Example News. All rights reserved.",
        "Advertisement",
    ],
)
def test_page_furniture_is_removed_but_story_sentences_stay(furniture: str) -> None:
    story = "Related talks between the two sides broke down in May and were not resumed."
    assert clean_text(f"{furniture}\n{story}\n{furniture}") == story


def test_the_seed_article_loses_its_repeated_paragraph_and_caption() -> None:
    seed = SHARED / "data" / "seed" / "000_2aed93fa6e2c637e.txt"
    if not seed.exists():
        pytest.skip(f"{seed} is absent (the research data lives in ../shared)")
    cleaned = clean_text(seed.read_text(encoding="utf-8"))
    assert cleaned.count("An Iraqi soldier (left) is pictured") == 1
    assert cleaned.count("it operates in small groups nowadays") == 1
    assert "Mardan Salih, the commander of the sector" in cleaned


# Fixed offsets: named zones add historical gaps and folds, which are zoneinfo's business, not ours.
_OFFSETS = st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-14 * 60, 14 * 60))


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=_OFFSETS))
def test_any_aware_datetime_round_trips_through_its_iso_form_to_the_same_instant(moment: datetime) -> None:
    parsed = parse_datetime(moment.isoformat())
    assert parsed is not None and parsed.tzinfo == UTC
    assert parsed == moment


@given(st.dates(min_value=date(1950, 1, 1), max_value=date(2099, 12, 31)))
def test_written_forms_of_a_date_parse_to_its_midnight_utc(day: date) -> None:
    forms = [day.isoformat(), day.strftime("%B %d, %Y"), day.strftime("%b. %d, %Y"), day.strftime("%d %B %Y")]
    for form in forms:
        assert parse_datetime(form) == datetime(day.year, day.month, day.day, tzinfo=UTC), form
