"""BM25 retrieval over the persistent lexical index: names, places and numbers that embeddings blur."""

from __future__ import annotations

from backend.core.protocols import LexicalStore, VectorStore
from backend.core.types import Hit, SearchQuery
from backend.store.lexical import MIN_LENGTH


class BM25Retriever:
    def __init__(self, index: LexicalStore, store: VectorStore, min_length: int = MIN_LENGTH) -> None:
        self._index = index
        self._store = store
        self._min_length = min_length

    def retrieve(self, query: SearchQuery) -> list[Hit]:
        ranked = self._index.search(query, query.k, self._min_length)
        chunks = self._store.get_chunks([chunk_id for chunk_id, _ in ranked])
        return [Hit(chunks[chunk_id], score) for chunk_id, score in ranked if chunk_id in chunks]
