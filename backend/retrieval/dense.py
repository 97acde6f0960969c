"""Dense retrieval: the query embedded by the same model as the chunks, nearest chunks from the store."""

from __future__ import annotations

from backend.core.protocols import Embedder, VectorStore
from backend.core.types import Hit, SearchQuery


class DenseRetriever:
    def __init__(self, embedder: Embedder, store: VectorStore) -> None:
        self._embedder = embedder
        self._store = store

    def retrieve(self, query: SearchQuery) -> list[Hit]:
        vector = self._embedder.embed_query(query.text)
        return self._store.query(vector, query, n=query.k)
