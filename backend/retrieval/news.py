"""The default retriever: the whole pipeline a news question needs.

1. First stage: dense and BM25 candidates, fused (RRF or weighted sum).
2. Time and outlets: the window and outlets read from the question filter the candidates or
   lift the ones that match; without a time in the question, an optional mild preference for
   articles published shortly before ``as_of``.
3. Second stage: a reranker over the top candidates (our cheap one, or a cross-encoder).
4. Collapse: one hit per article and per wire story; the other outlets that carried the story
   are reported as ``also_in``. Optionally a per-outlet cap and MMR for variety.

Every stage's worth is measured by the evaluation suite; the settings say what is on.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date

from backend.core.dates import end_of_day
from backend.core.protocols import ArticleStore, Retriever
from backend.core.text import content_terms, source_key, source_keys
from backend.core.types import Chunk, DateWindow, Hit, SearchFilters, SearchQuery
from backend.retrieval.hybrid import fuse_rrf, fuse_weighted
from backend.retrieval.rerank import Reranker
from backend.settings import RetrievalSettings

_DAY = 86_400


def window_filters(filters: SearchFilters, window: DateWindow) -> SearchFilters:
    """The explicit filters narrowed to the window (an explicit range and the window intersect)."""
    after = max((d for d in (filters.published_after, window.start) if d is not None), default=None)
    before = min((d for d in (filters.published_before, window.end) if d is not None), default=None)
    return replace(filters, published_after=after, published_before=before)


def _in_window(chunk: Chunk, window: DateWindow) -> bool:
    return chunk.published_at is not None and window.contains(chunk.published_at.date())


def _recency(chunk: Chunk, as_of: date, half_life_days: float) -> float:
    if chunk.published_at is None:
        return 0.0
    age_days = max(0.0, (end_of_day(as_of) - chunk.published_at.timestamp()) / _DAY)
    return math.pow(0.5, age_days / half_life_days)


def brevity(chunk: Chunk, min_words: int) -> float:
    """1 for a passage of ``min_words`` words or more, less for a shorter one (see the setting)."""
    if min_words <= 0:
        return 1.0
    words = len(chunk.title.split()) + len(chunk.text.split())
    return 1.0 if words >= min_words else math.sqrt(max(words, 1) / min_words)


class NewsRetriever:
    def __init__(
        self,
        dense: Retriever,
        lexical: Retriever,
        settings: RetrievalSettings,
        reranker: Reranker | None = None,
        registry: ArticleStore | None = None,
    ) -> None:
        self._dense = dense
        self._lexical = lexical
        self._settings = settings
        self._reranker = reranker
        self._registry = registry
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="byline-bm25")

    def retrieve(self, query: SearchQuery) -> list[Hit]:
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
        candidates = self._first_stage(replace(query, text=text, filters=filters))
        if not candidates and filters != query.filters:
            # The window or outlet read from the question left nothing: read it as a preference.
            candidates = self._first_stage(replace(query, text=text))
            window = reading.window if s.time_mode != "off" else None
            named = reading.sources if s.source_mode != "off" else ()
            filters = query.filters
        if not candidates:
            return []

        top = max(h.score for h in candidates) or 1.0
        scored: list[Hit] = []
        named_keys = source_keys(named)
        for hit in candidates:
            chunk = hit.chunk
            score = hit.score / top * brevity(chunk, s.min_passage_words)
            if window is not None and _in_window(chunk, window):
                score += s.time_boost
            elif window is None and s.recency_weight and query.as_of is not None:
                score += s.recency_weight * _recency(chunk, query.as_of, s.recency_half_life_days)
            if named_keys and source_key(chunk.source or "") in named_keys and not filters.sources:
                score += s.source_boost
            scored.append(replace(hit, score=score))
        scored.sort(key=lambda h: (-h.score, h.chunk.id))
        if self._reranker is not None and s.rerank:
            scored = self._rerank(text, scored)
        if s.collapse:
            scored = self._collapse(scored)
        if s.per_outlet_cap:
            scored = _cap_outlets(scored, s.per_outlet_cap)
        if s.mmr_lambda is not None:
            scored = _mmr(scored, s.mmr_lambda, query.k)
        return scored[: query.k]

    def _first_stage(self, query: SearchQuery) -> list[Hit]:
        deep = replace(query, k=max(self._settings.depth, query.k))
        # Side by side: the model and Chroma release the GIL, so BM25 runs while the question embeds.
        lexical = self._pool.submit(self._lexical.retrieve, deep)
        lists = [self._dense.retrieve(deep), lexical.result()]
        if self._settings.fusion == "weighted":
            w = self._settings.dense_weight
            return fuse_weighted(lists, [w, 1.0 - w])
        return fuse_rrf(lists)

    def _rerank(self, question: str, hits: list[Hit]) -> list[Hit]:
        assert self._reranker is not None
        depth = self._settings.rerank_depth
        head, tail = hits[:depth], hits[depth:]
        relevance = self._reranker.relevance(question, [h.chunk for h in head])
        short = self._settings.min_passage_words
        relevance = [r * brevity(h.chunk, short) for h, r in zip(head, relevance, strict=True)]
        w = self._settings.rerank_weight
        floor = min((h.score for h in head), default=0.0)
        # Reranked hits stay above the tail: the second stage reorders, it does not demote.
        reranked = [
            replace(h, score=floor + (1 - w) * (h.score - floor) + w * r) for h, r in zip(head, relevance, strict=True)
        ]
        reranked.sort(key=lambda h: (-h.score, h.chunk.id))
        return reranked + tail

    def _collapse(self, hits: list[Hit]) -> list[Hit]:
        """The best hit of each article, and of each story cluster; the rest named in ``also_in``."""
        kept: dict[str, Hit] = {}  # story key -> best hit
        others: dict[str, list[str]] = {}
        seen_articles: set[str] = set()
        for hit in hits:
            chunk = hit.chunk
            if chunk.article_id in seen_articles:
                continue
            seen_articles.add(chunk.article_id)
            story = chunk.cluster_id or chunk.article_id
            if story in kept:
                if chunk.source:
                    others[story].append(chunk.source)
                continue
            kept[story] = hit
            others[story] = []
        copies = self._registry.copies([h.chunk.article_id for h in kept.values()]) if self._registry else {}
        collapsed = []
        for story, hit in kept.items():
            outlets = [*others[story], *(c.source for c in copies.get(hit.chunk.article_id, []) if c.source)]
            also = tuple(o for o in dict.fromkeys(outlets) if o != hit.chunk.source)
            collapsed.append(replace(hit, also_in=also) if also else hit)
        return collapsed


def _cap_outlets(hits: list[Hit], cap: int) -> list[Hit]:
    """At most ``cap`` hits per outlet near the top; the rest move behind the others."""
    counts: dict[str, int] = {}
    head: list[Hit] = []
    tail: list[Hit] = []
    for hit in hits:
        key = source_key(hit.chunk.source or "")
        counts[key] = counts.get(key, 0) + 1
        (head if not key or counts[key] <= cap else tail).append(hit)
    return head + tail


def _mmr(hits: list[Hit], lam: float, k: int) -> list[Hit]:
    """Maximal marginal relevance with term-set (Jaccard) similarity: no vectors needed."""
    terms = {h.chunk.id: set(content_terms(h.chunk.text)) for h in hits}
    chosen: list[Hit] = []
    pool = list(hits)
    while pool and len(chosen) < k:

        def gain(h: Hit) -> float:
            mine = terms[h.chunk.id]
            overlap = max((_jaccard(mine, terms[c.chunk.id]) for c in chosen), default=0.0)
            return lam * h.score - (1 - lam) * overlap

        best = max(pool, key=gain)
        chosen.append(best)
        pool.remove(best)
    return chosen + pool


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0
