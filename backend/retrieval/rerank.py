"""Second-stage rerankers: a relevance in [0, 1] for each of the top candidates.

The cheap reranker looks at what a first stage that scores chunks one term or one vector at
a time misses: whether the question's names and numbers all appear together, whether its word
pairs appear as phrases, and whether the headline is about the same thing. A cross-encoder
(sentence-transformers ``CrossEncoder``, by name or path) replaces it when one is configured.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from itertools import pairwise
from typing import Any, Protocol

from backend.core.text import content_terms
from backend.core.types import Chunk

# Capitalised words after the first, acronyms and numbers: the names, places and figures of a question.
_KEY_TOKEN = re.compile(r"(?<!^)(?<![.?!]\s)\b(?:[A-Z][\w'’-]+|\d[\d,.]*%?)")


class Reranker(Protocol):
    def relevance(self, question: str, chunks: Sequence[Chunk]) -> list[float]: ...


def key_tokens(question: str) -> set[str]:
    return {t.casefold().strip(".,") for t in _KEY_TOKEN.findall(question.strip())}


def _bigrams(terms: Sequence[str]) -> set[tuple[str, str]]:
    return set(pairwise(terms))


_WEIGHTS = {"coverage": 0.35, "entities": 0.25, "phrases": 0.2, "title": 0.2}


class CheapReranker:
    def relevance(self, question: str, chunks: Sequence[Chunk]) -> list[float]:
        q_terms = content_terms(question)
        q_set, q_pairs, q_keys = set(q_terms), _bigrams(q_terms), key_tokens(question)
        scores = []
        for chunk in chunks:
            title_terms = content_terms(chunk.title)
            terms = title_terms + content_terms(chunk.text)  # the headline's words count as the body's too
            term_set = set(terms)
            folded = f"{chunk.title}\n{chunk.text}".casefold()
            features = {
                "coverage": len(q_set & term_set) / len(q_set) if q_set else 0.0,
                "entities": sum(k in folded for k in q_keys) / len(q_keys) if q_keys else 0.0,
                "phrases": len(q_pairs & _bigrams(terms)) / len(q_pairs) if q_pairs else 0.0,
                "title": len(q_set & set(title_terms)) / len(q_set) if q_set else 0.0,
            }
            scores.append(sum(_WEIGHTS[name] * value for name, value in features.items()))
        return scores


class CrossEncoderReranker:
    """A sentence-transformers cross-encoder; logits are squashed to [0, 1]."""

    def __init__(self, model: str, device: str = "cpu") -> None:
        self._name = model
        self._device = device
        self._model: Any = None

    def relevance(self, question: str, chunks: Sequence[Chunk]) -> list[float]:
        if self._model is None:
            from sentence_transformers import CrossEncoder

            self._model = CrossEncoder(self._name, device=self._device)
        if not chunks:
            return []
        raw = self._model.predict([(question, f"{c.title}\n{c.text}") for c in chunks], show_progress_bar=False)
        return [1.0 / (1.0 + math.exp(-float(x))) for x in raw]
