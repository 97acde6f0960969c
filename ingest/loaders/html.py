"""HTML pages: the main text and metadata (title, author, date, canonical URL, site name) by trafilatura.

The record comes from ``ingest.follow.parse.page_record``, which also reads the pages of followed feeds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ingest.follow.parse import page_record
from ingest.loaders.types import Loaded


def load_html(path: Path) -> Iterator[Loaded]:
    raw = path.read_bytes()
    record = page_record(raw, "")
    if record is None:
        yield Loaded("no article text found in the page", None, len(raw))
        return
    yield Loaded(record, None, len(raw))
