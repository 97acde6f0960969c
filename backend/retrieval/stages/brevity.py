"""Short passages score less (setting ``min_passage_words``; 0: the stage is absent).

A one-word post matches a one-word question perfectly by words and by meaning; before this, ninety of
them outranked every real article.
"""

from __future__ import annotations

import math
from dataclasses import replace

from backend.core.types import Chunk, Hit
from backend.retrieval.stages.base import Search, ranked


def brevity(chunk: Chunk, min_words: int) -> float:
    """1 for a passage of ``min_words`` words or more, less for a shorter one (see the setting)."""
    if min_words <= 0:
        return 1.0
    words = len(chunk.title.split()) + len(chunk.text.split())
    return 1.0 if words >= min_words else math.sqrt(max(words, 1) / min_words)


class Brevity:
    name = "brevity"

    def __init__(self, min_words: int) -> None:
        self._min_words = min_words

    def run(self, search: Search, hits: list[Hit]) -> list[Hit]:
        return ranked([replace(h, score=h.score * brevity(h.chunk, self._min_words)) for h in hits])
