"""Outlets: candidates from an outlet the question names ("according to Reuters") are lifted by
``source_boost`` where the outlet did not filter (``source_mode=boost``, or a filter that left nothing).

Absent when ``source_mode`` is off.
"""

from __future__ import annotations

from dataclasses import replace

from backend.core.text import source_key, source_keys
from backend.core.types import Hit
from backend.retrieval.stages.base import Search, ranked


class OutletLift:
    name = "outlets"

    def __init__(self, boost: float) -> None:
        self._boost = boost

    def run(self, search: Search, hits: list[Hit]) -> list[Hit]:
        named = source_keys(search.outlets)
        if not named:
            return hits
        lifted = [
            replace(h, score=h.score + self._boost) if source_key(h.chunk.source or "") in named else h for h in hits
        ]
        return ranked(lifted)
