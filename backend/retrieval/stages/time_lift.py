"""Time: candidates inside the window read from the question are lifted by ``time_boost``; without a window,
those published shortly before ``as_of`` by up to ``recency_weight``, halving every ``recency_half_life_days``.

Absent when ``time_mode`` is off and ``recency_weight`` is 0.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date

from backend.core.dates import end_of_day
from backend.core.types import Chunk, Hit
from backend.retrieval.stages.base import Search, ranked
from backend.settings import RetrievalSettings

_DAY = 86_400


def recency(chunk: Chunk, as_of: date, half_life_days: float) -> float:
    if chunk.published_at is None:
        return 0.0
    age_days = max(0.0, (end_of_day(as_of) - chunk.published_at.timestamp()) / _DAY)
    return math.pow(0.5, age_days / half_life_days)


class TimeLift:
    name = "time"

    def __init__(self, settings: RetrievalSettings) -> None:
        self._boost = settings.time_boost
        self._recency_weight = settings.recency_weight
        self._half_life_days = settings.recency_half_life_days

    def run(self, search: Search, hits: list[Hit]) -> list[Hit]:
        window, as_of = search.window, search.query.as_of
        lifted = []
        for hit in hits:
            chunk = hit.chunk
            score = hit.score
            if window is not None:
                if chunk.published_at is not None and window.contains(chunk.published_at.date()):
                    score += self._boost
            elif self._recency_weight and as_of is not None:
                score += self._recency_weight * recency(chunk, as_of, self._half_life_days)
            lifted.append(replace(hit, score=score))
        return ranked(lifted)
