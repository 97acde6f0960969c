"""At most ``per_outlet_cap`` hits per outlet near the top; the rest move behind the others (0: absent)."""

from __future__ import annotations

from backend.core.text import source_key
from backend.core.types import Hit
from backend.retrieval.stages.base import Search


class OutletCap:
    name = "outlet_cap"

    def __init__(self, cap: int) -> None:
        self._cap = cap

    def run(self, search: Search, hits: list[Hit]) -> list[Hit]:
        counts: dict[str, int] = {}
        head: list[Hit] = []
        tail: list[Hit] = []
        for hit in hits:
            key = source_key(hit.chunk.source or "")
            counts[key] = counts.get(key, 0) + 1
            (head if not key or counts[key] <= self._cap else tail).append(hit)
        return head + tail
