"""Maximal marginal relevance (setting ``mmr_lambda``; None: absent): each next hit trades its score
against its likeness to those chosen before it, by term sets (Jaccard), so no vectors are needed.
"""

from __future__ import annotations

from backend.core.text import content_terms
from backend.core.types import Hit
from backend.retrieval.stages.base import Search


class MMR:
    name = "mmr"

    def __init__(self, lam: float) -> None:
        self._lam = lam

    def run(self, search: Search, hits: list[Hit]) -> list[Hit]:
        """The first ``k`` chosen by MMR, then the rest in their order."""
        lam, k = self._lam, search.query.k
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
