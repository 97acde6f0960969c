"""HTML pages: the main text and metadata (title, author, date, canonical URL, site name) by trafilatura."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.loaders.types import Loaded

# trafilatura reports every page it finds too short at WARNING; our summary says it once.
logging.getLogger("trafilatura").setLevel(logging.ERROR)


def load_html(path: Path) -> Iterator[Loaded]:
    import trafilatura

    raw = path.read_bytes()
    document = trafilatura.bare_extraction(
        raw.decode("utf-8", errors="replace"), with_metadata=True, include_comments=False, favor_precision=True
    )
    data: dict[str, Any] = {}
    if document is not None:
        data = document.as_dict() if hasattr(document, "as_dict") else dict(document)
    text = (data.get("text") or "").strip()
    if not text:
        yield Loaded("no article text found in the page", None, len(raw))
        return
    title = (data.get("title") or "").strip()
    first, _, rest = text.partition("\n")
    if title and first.strip() == title and rest.strip():
        text = rest.strip()  # the extractor repeats the headline as the first line
    record = {
        "title": title,
        "text": text,
        "url": data.get("url"),
        "published_at": data.get("date"),
        "authors": data.get("author"),
        "source": data.get("sitename"),
    }
    yield Loaded({k: v for k, v in record.items() if v}, None, len(raw))
