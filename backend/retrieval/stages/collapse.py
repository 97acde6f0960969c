"""One hit per article and per wire story (setting ``collapse``): the best one stays, and the other
outlets that carried the story are named in its ``also_in``.
"""

from __future__ import annotations

from dataclasses import replace

from backend.core.protocols import ArticleStore
from backend.core.types import Hit
from backend.retrieval.stages.base import Search


class Collapse:
    name = "collapse"

    def __init__(self, registry: ArticleStore | None = None) -> None:
        """``registry``: where copies of a story that were not retrieved are found; without one, only the
        retrieved copies are named."""
        self._registry = registry

    def run(self, search: Search, hits: list[Hit]) -> list[Hit]:
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
