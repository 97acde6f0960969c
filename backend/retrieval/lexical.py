"""BM25 over the stored chunks, for names, places and numbers that embeddings blur.

This version builds its index in memory from the store when first used, which suits
evaluation and small archives; filters (``as_of``, outlets, dates) are applied as masks over
the scores, so they behave exactly as the dense retriever's.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from backend.core.dates import end_of_day, start_of_day
from backend.core.text import content_terms
from backend.core.types import Chunk, Hit, SearchQuery
from backend.store.chroma import ChromaStore, source_key

if TYPE_CHECKING:
    import bm25s


class BM25Retriever:
    def __init__(self, store: ChromaStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._index: bm25s.BM25 | None = None
        self._chunks: list[Chunk] = []
        self._published = np.zeros(0, dtype=np.int64)
        self._dated = np.zeros(0, dtype=bool)
        self._sources = np.zeros(0, dtype=object)

    def _build(self) -> bm25s.BM25 | None:
        with self._lock:
            if self._index is None:
                import bm25s

                chunks = list(self._store.iter_chunks())
                if not chunks:
                    return None
                index = bm25s.BM25()
                # Title words count too: a question often names what the headline names.
                corpus = [content_terms(f"{c.title}\n{c.text}") or ["∅"] for c in chunks]
                index.index(corpus, show_progress=False)
                self._chunks = chunks
                self._published = np.array(
                    [int(c.published_at.timestamp()) if c.published_at else 0 for c in chunks], dtype=np.int64
                )
                self._dated = np.array([c.published_at is not None for c in chunks], dtype=bool)
                self._sources = np.array([source_key(c.source or "") for c in chunks], dtype=object)
                self._index = index
            return self._index

    def _mask(self, query: SearchQuery) -> np.ndarray:
        keep = np.ones(len(self._chunks), dtype=bool)
        if query.as_of is not None:
            keep &= (self._published <= end_of_day(query.as_of)) | ~self._dated
        f = query.filters
        if f.published_after is not None:
            keep &= self._dated & (self._published >= start_of_day(f.published_after))
        if f.published_before is not None:
            keep &= self._dated & (self._published <= end_of_day(f.published_before))
        if f.sources:
            keep &= np.isin(self._sources, [source_key(s) for s in f.sources])
        return keep

    def retrieve(self, query: SearchQuery) -> list[Hit]:
        index = self._build()
        terms = content_terms(query.text)
        if index is None or not terms:
            return []
        scores = np.asarray(index.get_scores(terms), dtype=float)
        scores[~self._mask(query)] = -np.inf
        k = min(query.k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [Hit(self._chunks[i], float(scores[i])) for i in top if np.isfinite(scores[i]) and scores[i] > 0]
