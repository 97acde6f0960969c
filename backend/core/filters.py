"""One filter language: what a search's filters let through, as a pure function.

The filters are the day a question is asked (``as_of``: nothing published later; undated articles pass,
since they cannot be shown to postdate it), an explicit published-after/before range (which undated
articles never match) and outlets (compared by ``source_key``). ``matches`` is the reference; the Chroma
``where`` clause (``backend.store.chroma.build_where``) and the BM25 index's mask
(``backend.store.lexical``) are translations of it, and a property test checks that all three agree.
"""

from __future__ import annotations

from datetime import datetime

from backend.core.dates import end_of_day, start_of_day
from backend.core.text import source_key, source_keys
from backend.core.types import SearchQuery


def matches(published_at: datetime | None, source: str | None, query: SearchQuery) -> bool:
    """Whether an article published at ``published_at`` (None: undated) by ``source`` passes the query's
    filters. Times compare in whole seconds, as every store keeps them."""
    published = int(published_at.timestamp()) if published_at is not None else None
    if query.as_of is not None and published is not None and published > end_of_day(query.as_of):
        return False
    f = query.filters
    if f.published_after is not None and (published is None or published < start_of_day(f.published_after)):
        return False
    if f.published_before is not None and (published is None or published > end_of_day(f.published_before)):
        return False
    return not f.sources or source_key(source or "") in source_keys(f.sources)
