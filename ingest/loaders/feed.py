"""RSS and Atom feeds: an article per entry, full content where the feed carries it, else the summary.

The entries come from ``ingest.follow.parse``, the parser of followed feeds, so a feed reads the same
from a file as from the web."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.follow.parse import ParseError, parse_source
from ingest.loaders.types import Loaded


def load_feed(path: Path) -> Iterator[Loaded]:
    raw = path.read_bytes()
    try:
        parsed = parse_source(raw, "")
    except ParseError as exc:
        yield Loaded(f"no entries in the feed: {exc}", None, len(raw))
        return
    if not parsed.entries:
        yield Loaded("no entries in the feed", None, len(raw))
        return
    total = len(parsed.entries)
    for index, entry in enumerate(parsed.entries, start=1):
        offset = len(raw) * index // total
        if not entry.text:
            yield Loaded(f"entry {index} ({entry.title or 'untitled'!r}) has no content or summary", None, offset)
            continue
        record: dict[str, Any] = {
            "id": entry.guid,
            "title": entry.title,
            "text": entry.text,
            "url": entry.url,
            "published_at": entry.published,
            "authors": list(entry.authors),
            "source": entry.outlet or parsed.title,
            "summary_only": entry.summary_only,
        }
        yield Loaded({k: v for k, v in record.items() if v not in (None, "", [])}, None, offset)
