"""Dense and lexical candidates fused by reciprocal rank (RRF): names and numbers from BM25,
paraphrase from embeddings, without calibrating one score scale against the other."""

from __future__ import annotations

from dataclasses import replace

from backend.core.protocols import Retriever
from backend.core.types import Chunk, Hit, SearchQuery

RRF_K = 60  # the usual constant: damps the head of each list so neither retriever dominates


class HybridRetriever:
    def __init__(self, dense: Retriever, lexical: Retriever, depth: int = 50) -> None:
        self._dense = dense
        self._lexical = lexical
        self._depth = depth

    def retrieve(self, query: SearchQuery) -> list[Hit]:
        deep = replace(query, k=max(self._depth, query.k))
        scores: dict[str, float] = {}
        chunks: dict[str, Chunk] = {}
        for hits in (self._dense.retrieve(deep), self._lexical.retrieve(deep)):
            for rank, hit in enumerate(hits):
                scores[hit.chunk.id] = scores.get(hit.chunk.id, 0.0) + 1.0 / (RRF_K + rank + 1)
                chunks[hit.chunk.id] = hit.chunk
        best = sorted(scores, key=lambda cid: scores[cid], reverse=True)[: query.k]
        return [Hit(chunks[cid], scores[cid]) for cid in best]
