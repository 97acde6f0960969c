"""Second stage: a reranker (``backend.retrieval.rerank``) reorders the top ``rerank_depth`` candidates,
weighing its relevance by ``rerank_weight`` against their score so far.

Absent when ``rerank`` is false.
"""

from __future__ import annotations

from dataclasses import replace

from backend.core.types import Hit
from backend.retrieval.rerank import Reranker
from backend.retrieval.stages.base import Search, ranked
from backend.retrieval.stages.brevity import brevity
from backend.settings import RetrievalSettings


class Rerank:
    name = "rerank"

    def __init__(self, reranker: Reranker, settings: RetrievalSettings) -> None:
        self._reranker = reranker
        self._depth = settings.rerank_depth
        self._weight = settings.rerank_weight
        self._min_words = settings.min_passage_words

    def run(self, search: Search, hits: list[Hit]) -> list[Hit]:
        head, tail = hits[: self._depth], hits[self._depth :]
        relevance = self._reranker.relevance(search.text, [h.chunk for h in head])
        # A reranker, too, finds a one-word post a perfect match for a one-word question.
        relevance = [r * brevity(h.chunk, self._min_words) for h, r in zip(head, relevance, strict=True)]
        w = self._weight
        floor = min((h.score for h in head), default=0.0)
        # Reranked hits stay above the tail: the second stage reorders, it does not demote.
        reranked = [
            replace(h, score=floor + (1 - w) * (h.score - floor) + w * r) for h, r in zip(head, relevance, strict=True)
        ]
        return ranked(reranked) + tail
