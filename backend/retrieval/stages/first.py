"""First stage: dense and BM25 candidates, fused (RRF or weighted sum), scored against the best of them.

The window and outlets read from the question filter here when their settings say ``filter``; where
that leaves nothing they become preferences (``Search.window``, ``Search.outlets``) for the lifts.
Settings: ``depth``, ``fusion``, ``dense_weight``, ``time_mode``, ``source_mode``.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import replace

from backend.core.protocols import Retriever
from backend.core.types import DateWindow, Hit, SearchFilters, SearchQuery
from backend.retrieval.hybrid import fuse_rrf, fuse_weighted
from backend.retrieval.stages.base import Search, ranked
from backend.settings import RetrievalSettings


def window_filters(filters: SearchFilters, window: DateWindow) -> SearchFilters:
    """The explicit filters narrowed to the window (an explicit range and the window intersect)."""
    after = max((d for d in (filters.published_after, window.start) if d is not None), default=None)
    before = min((d for d in (filters.published_before, window.end) if d is not None), default=None)
    return replace(filters, published_after=after, published_before=before)


class FirstStage:
    name = "first"

    def __init__(
        self, dense: Retriever, lexical: Retriever, settings: RetrievalSettings, pool: Executor | None = None
    ) -> None:
        """``pool``: where BM25 runs while the question embeds; without one, the two run one after the other."""
        self._dense = dense
        self._lexical = lexical
        self._settings = settings
        self._pool = pool

    def candidates(self, query: SearchQuery) -> tuple[Search, list[Hit]]:
        """The candidates, each scored by its fused score over the best one's (so the best scores 1)."""
        s = self._settings
        reading = query.reading
        window = reading.window if s.time_mode != "off" else None
        filters = query.filters
        if window is not None and s.time_mode == "filter":
            filters = window_filters(filters, window)
        named = reading.sources if s.source_mode != "off" and not filters.sources else ()
        if named and s.source_mode == "filter":
            filters = replace(filters, sources=named)
        text = reading.text or query.text
        hits = self._fused(replace(query, text=text, filters=filters))
        if not hits and filters != query.filters:
            # The window or outlet read from the question left nothing: read it as a preference.
            hits = self._fused(replace(query, text=text))
            named = reading.sources if s.source_mode != "off" else ()
            filters = query.filters
        search = Search(query, text, filters, window, named if not filters.sources else ())
        if not hits:
            return search, []
        top = max(h.score for h in hits) or 1.0
        return search, ranked([replace(h, score=h.score / top) for h in hits])

    def _fused(self, query: SearchQuery) -> list[Hit]:
        deep = replace(query, k=max(self._settings.depth, query.k))
        if self._pool is None:
            lists = [self._dense.retrieve(deep), self._lexical.retrieve(deep)]
        else:
            # Side by side: the model and Chroma release the GIL, so BM25 runs while the question embeds.
            lexical = self._pool.submit(self._lexical.retrieve, deep)
            lists = [self._dense.retrieve(deep), lexical.result()]
        if self._settings.fusion == "weighted":
            w = self._settings.dense_weight
            return fuse_weighted(lists, [w, 1.0 - w])
        return fuse_rrf(lists)
