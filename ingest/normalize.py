"""Raw records (any loader) to ``Article``: field names mapped, values normalised."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from backend.core.dates import parse_datetime, plausible_published
from backend.core.text import text_hash
from backend.core.types import Article
from ingest.clean import clean_line, clean_text

_TEXT_FIELDS = ("text", "body", "content")
_TITLE_FIELDS = ("title", "headline")
_URL_FIELDS = ("url", "link")
_DATE_FIELDS = ("published_at", "published", "date")
_AUTHOR_FIELDS = ("authors", "author", "byline")
_SOURCE_FIELDS = ("source", "outlet", "publisher")
_KNOWN = {"id", *_TEXT_FIELDS, *_TITLE_FIELDS, *_URL_FIELDS, *_DATE_FIELDS, *_AUTHOR_FIELDS, *_SOURCE_FIELDS}
_AUTHOR_SPLIT = re.compile(r"\s*(?:;|,|\band\b|&)\s*")


class RecordError(ValueError):
    """A record that cannot become an article; the message says why."""


def _first(record: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = record.get(name)
        if value not in (None, "", []):
            return value
    return None


def _authors(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = _AUTHOR_SPLIT.split(value.removeprefix("By ").removeprefix("by "))
    if not isinstance(value, list):
        raise RecordError(f"authors must be a list or a string, got {type(value).__name__}")
    names = (clean_line(str(v)) for v in value if v)
    return tuple(dict.fromkeys(n for n in names if n))


def site_name(url: str | None) -> str | None:
    """The outlet implied by a URL when the record names none: its host without "www."."""
    if not url:
        return None
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.") or None


_MAX_ID_CHARS = 500


def given_id(record_id: Any) -> str | None:
    """A record's own id, NFC-normalised and trimmed; refused when it cannot name an article safely.

    Control and invisible formatting characters (NUL, U+202E RIGHT-TO-LEFT OVERRIDE, zero-width spaces) are
    refused rather than dropped: dropping them could turn one id into another article's."""
    if record_id is None or isinstance(record_id, bool) or not isinstance(record_id, str | int | float):
        if record_id is None:
            return None
        raise RecordError(f"id must be a string or a number, got {type(record_id).__name__}")
    text = unicodedata.normalize("NFC", str(record_id)).strip()
    if not text:
        return None
    hidden = sorted({ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")})
    if hidden:
        shown = ", ".join(f"U+{ord(ch):04X}" for ch in hidden[:3])
        raise RecordError(f"the id contains control or invisible characters ({shown})")
    if len(text) > _MAX_ID_CHARS:
        raise RecordError(f"the id is longer than {_MAX_ID_CHARS} characters")
    return text


def article_id(record_id: Any, url: str | None, text: str) -> str:
    """Ids are stable across runs: given, else derived from the URL, else from the text."""
    given = given_id(record_id)
    if given is not None:
        return given
    if url:
        return "u" + text_hash(url.strip())
    return "t" + text_hash(text)


# Cleaning copies the text several times over; a text far beyond the cut is cut before cleaning, at this
# multiple of the cut (cleaning rarely shrinks news text by more), so a 50 MB "article" costs little memory.
_PRE_CUT = 4


def article_from_record(
    record: dict[str, Any], max_chars: int | None = None, now: datetime | None = None
) -> tuple[Article, list[str]]:
    """Return the article and warnings (kept data that could not be read as intended).

    With ``max_chars``, a longer text is cut to it, with a warning giving its length as found. A date
    that cannot be read, or is not plausible as of ``now`` (before 1800, after tomorrow), leaves the
    article undated with a warning. Whatever the record holds, the only error raised is ``RecordError``."""
    try:
        return _article(record, max_chars, now)
    except RecordError:
        raise
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # a value no rule above foresaw
        raise RecordError(f"unreadable record: {type(exc).__name__}: {str(exc)[:200]}") from exc


def _article(record: dict[str, Any], max_chars: int | None, now: datetime | None) -> tuple[Article, list[str]]:
    warnings: list[str] = []
    raw_text = _first(record, _TEXT_FIELDS)
    if not isinstance(raw_text, str):
        raise RecordError("no text: expected a non-empty 'text', 'body' or 'content' string")
    found = len(raw_text)
    if max_chars is not None and found > max_chars * _PRE_CUT:
        raw_text = raw_text[: max_chars * _PRE_CUT]
    text = clean_text(raw_text)
    if not text:
        raise RecordError("the text is empty after cleaning")
    if not any(ch.isalnum() for ch in text):  # what is left of invalid bytes: punctuation, no story
        raise RecordError("no words in the text after cleaning")
    if max_chars is not None and len(text) > max_chars:
        length = found if found > max_chars * _PRE_CUT else len(text)
        warnings.append(f"text of {length:,} characters cut to {max_chars:,}")
        text = text[:max_chars]
    url = _first(record, _URL_FIELDS)
    url = clean_line(str(url)) if url else None
    raw_date = _first(record, _DATE_FIELDS)
    metadata = {k: v for k, v in record.items() if k not in _KNOWN}
    try:
        published = parse_datetime(raw_date)
    except ValueError as exc:
        published = None
        metadata["published_at_raw"] = raw_date
        warnings.append(f"{exc}; the article is kept undated")
    if published is not None and not plausible_published(published, now):
        metadata["published_at_raw"] = raw_date
        warnings.append(
            f"implausible date {published.date().isoformat()} (before 1800 or after tomorrow);"
            " the article is kept undated"
        )
        published = None
    source = _first(record, _SOURCE_FIELDS)
    article = Article(
        id=article_id(record.get("id"), url, text),
        text=text,
        title=clean_line(str(_first(record, _TITLE_FIELDS) or "")),
        url=url,
        source=clean_line(str(source)) if source else site_name(url),
        published_at=published,
        authors=_authors(_first(record, _AUTHOR_FIELDS)),
        metadata=json.loads(json.dumps(metadata, default=str)),
    )
    return article, warnings
