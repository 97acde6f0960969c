"""Fusion of dense and lexical candidates: names and numbers from BM25, paraphrase from embeddings.

Reciprocal rank fusion (RRF) needs no score calibration; the weighted sum of per-list
normalised scores keeps how much better the first hit is than the tenth. Both are measured in
the evaluation suite (docs/evaluation.md, docs/retrieval.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from backend.core.protocols import Retriever
from backend.core.types import Hit, SearchQuery

RRF_K = 60  # the usual constant: damps the head of each list so neither retriever dominates


def fuse_rrf(lists: Sequence[Sequence[Hit]]) -> list[Hit]:
    """Hits of all lists, scored by the sum of 1 / (RRF_K + rank), best first."""
    scores: dict[str, float] = {}
    hits: dict[str, Hit] = {}
    for ranked in lists:
        for rank, hit in enumerate(ranked):
            scores[hit.chunk.id] = scores.get(hit.chunk.id, 0.0) + 1.0 / (RRF_K + rank + 1)
            hits.setdefault(hit.chunk.id, hit)
    return _ranked(hits, scores)


def fuse_weighted(lists: Sequence[Sequence[Hit]], weights: Sequence[float]) -> list[Hit]:
    """Hits scored by the weighted sum of their min-max normalised scores (0 where a list lacks one)."""
    scores: dict[str, float] = {}
    hits: dict[str, Hit] = {}
    for ranked, weight in zip(lists, weights, strict=True):
        if not ranked:
            continue
        values = [h.score for h in ranked]
        low, high = min(values), max(values)
        spread = high - low or 1.0
        for hit in ranked:
            scores[hit.chunk.id] = scores.get(hit.chunk.id, 0.0) + weight * (hit.score - low) / spread
            hits.setdefault(hit.chunk.id, hit)
    return _ranked(hits, scores)


def _ranked(hits: dict[str, Hit], scores: dict[str, float]) -> list[Hit]:
    order = sorted(scores, key=lambda cid: (-scores[cid], cid))
    return [replace(hits[cid], score=scores[cid]) for cid in order]


class HybridRetriever:
    """Dense and BM25 fused by RRF, nothing else: the plain hybrid the evaluation compares against."""

    def __init__(self, dense: Retriever, lexical: Retriever, depth: int = 50) -> None:
        self._dense = dense
        self._lexical = lexical
        self._depth = depth

    def retrieve(self, query: SearchQuery) -> list[Hit]:
        deep = replace(query, k=max(self._depth, query.k))
        return fuse_rrf([self._dense.retrieve(deep), self._lexical.retrieve(deep)])[: query.k]
