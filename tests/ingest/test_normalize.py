from datetime import UTC, datetime

import pytest

from ingest.clean import clean_text
from ingest.normalize import RecordError, article_from_record


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
