"""RSS and Atom feeds: an article per entry, full content where the feed carries it, else the summary."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

from ingest.loaders.types import Loaded

_TAG = re.compile(r"<[^>]+>")
_BLOCK = re.compile(r"</?(?:p|div|br|li|h[1-6]|blockquote|tr)\b[^>]*>", re.I)
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1>", re.I | re.S)


def html_to_text(fragment: str) -> str:
    """Feed content is an HTML fragment; keep paragraph breaks, drop tags, scripts and styles."""
    text = _SCRIPT.sub(" ", fragment)
    text = _BLOCK.sub("\n", text)
    return unescape(_TAG.sub("", text))


def load_feed(path: Path) -> Iterator[Loaded]:
    import feedparser

    raw = path.read_bytes()
    parsed = feedparser.parse(raw)
    if not parsed.entries:
        reason = f": {parsed.bozo_exception}" if parsed.get("bozo") else ""
        yield Loaded(f"no entries in the feed{reason}", None, len(raw))
        return
    outlet = parsed.feed.get("title")
    total = len(parsed.entries)
    for index, entry in enumerate(parsed.entries, start=1):
        offset = len(raw) * index // total
        contents = [c.get("value", "") for c in entry.get("content", []) if c.get("value")]
        summary_only = not contents
        body = "\n\n".join(contents) if contents else entry.get("summary", "")
        text = html_to_text(body).strip()
        if not text:
            yield Loaded(f"entry {index} ({entry.get('title', 'untitled')!r}) has no content or summary", None, offset)
            continue
        authors = [a.get("name") for a in entry.get("authors", []) if a.get("name")] or entry.get("author")
        record: dict[str, Any] = {
            "id": entry.get("id") or None,
            "title": entry.get("title", ""),
            "text": text,
            "url": entry.get("link"),
            "published_at": entry.get("published") or entry.get("updated"),
            "authors": authors,
            "source": outlet,
            "summary_only": summary_only,
        }
        yield Loaded({k: v for k, v in record.items() if v not in (None, "", [])}, None, offset)
