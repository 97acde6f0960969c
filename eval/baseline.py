"""The tutorial baseline: what a user assembles from a LangChain RAG tutorial.

``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)`` over each article's text,
the same embedding model, dense top-k from a Chroma collection of its own. It is given the same
``as_of`` cut as Byline's retrievers (a tutorial would not have one), so the comparison measures
retrieval, not the date rule. The collection is built once per archive and cached beside the
real one; it is rebuilt when the archive's articles change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from itertools import groupby

from backend.core.types import Chunk
from backend.retrieval.dense import DenseRetriever
from backend.services import Services
from backend.store.chroma import ChromaStore, join_chunks, open_client

COLLECTION = "byline_tutorial_baseline"
CHUNK_SIZE, CHUNK_OVERLAP = 1000, 200
_BATCH = 256

Progress = Callable[[int, int], None]  # (passages embedded, passages in all)


def _articles(services: Services) -> Iterator[list[Chunk]]:
    ordered = sorted(services.store.iter_chunks(), key=lambda c: (c.article_id, c.position))
    for _, group in groupby(ordered, key=lambda c: c.article_id):
        yield list(group)


def _fingerprint(article_ids: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(article_ids)).encode()).hexdigest()[:16]


def tutorial_retriever(services: Services, progress: Progress | None = None) -> DenseRetriever:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    store = ChromaStore(open_client(services.settings.chroma, services.settings.chroma_dir), COLLECTION)
    articles = list(_articles(services))
    fingerprint = _fingerprint(c.id for group in articles for c in group)
    marker = services.settings.chroma_dir / f"{COLLECTION}.built"
    # The count guards against a Chroma server that was reset while the marker stayed (http mode).
    if marker.exists() and marker.read_text(encoding="utf-8") == fingerprint and store.count() > 0:
        return DenseRetriever(services.embedder, store)
    marker.unlink(missing_ok=True)
    store.delete([c.id for c in store.iter_chunks()])
    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    pieces: list[Chunk] = []
    for group in articles:
        first = group[0]
        for position, text in enumerate(splitter.split_text(join_chunks([c.text for c in group]))):
            piece_id = f"{first.article_id}:t{position}"
            pieces.append(replace(first, id=piece_id, position=position, text=text, cluster_id=None))
    for start in range(0, len(pieces), _BATCH):
        batch = pieces[start : start + _BATCH]
        store.upsert(batch, services.embedder.embed_documents([c.text for c in batch]), [{} for _ in batch])
        if progress is not None:
            progress(start + len(batch), len(pieces))
    # Written last: an interrupted build is redone, never used half-made.
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(fingerprint, encoding="utf-8")
    return DenseRetriever(services.embedder, store)
