"""The one place that builds the object graph from settings and chooses implementations."""

from __future__ import annotations

from dataclasses import dataclass

from backend.answering.chain import AnswerChain
from backend.answering.extractive import ExtractiveAnswerer
from backend.answering.sessions import SessionStore
from backend.core.protocols import AnswerGenerator, Embedder, Retriever
from backend.embedding import SentenceTransformerEmbedder
from backend.retrieval.dense import DenseRetriever
from backend.retrieval.hybrid import HybridRetriever
from backend.retrieval.lexical import BM25Retriever
from backend.settings import Settings
from backend.store.articles import ArticleRegistry
from backend.store.chroma import ChromaStore
from backend.store.lexical import LexicalIndex


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    embedder: Embedder
    store: ChromaStore
    lexical: LexicalIndex
    registry: ArticleRegistry
    retriever: Retriever
    answers: AnswerChain


def build_store(settings: Settings) -> ChromaStore:
    return ChromaStore(settings.chroma_dir, settings.chroma.collection)


def build_registry(settings: Settings) -> ArticleRegistry:
    return ArticleRegistry(settings.articles_db)


def build_generator(settings: Settings, embedder: Embedder) -> AnswerGenerator:
    match settings.llm.provider:
        case "extractive":
            return ExtractiveAnswerer(embedder, settings.answer)


RETRIEVERS = ("dense", "bm25", "hybrid")


def build_lexical(settings: Settings) -> LexicalIndex:
    return LexicalIndex(settings.lexical_db)


def build_retriever(name: str, embedder: Embedder, store: ChromaStore, lexical: LexicalIndex) -> Retriever:
    match name:
        case "dense":
            return DenseRetriever(embedder, store)
        case "bm25":
            return BM25Retriever(lexical, store)
        case "hybrid":
            return HybridRetriever(DenseRetriever(embedder, store), BM25Retriever(lexical, store))
        case _:
            raise ValueError(f"unknown retriever {name!r}; known: {', '.join(RETRIEVERS)}")


def build_services(settings: Settings, embedder: Embedder | None = None) -> Services:
    """``embedder`` lets a caller that already loaded the model (tests, ingest) share it."""
    embedder = embedder or SentenceTransformerEmbedder(settings.embedding)
    store = build_store(settings)
    lexical = build_lexical(settings)
    retriever = build_retriever(settings.retrieval.retriever, embedder, store, lexical)
    answers = AnswerChain(
        retriever,
        build_generator(settings, embedder),
        SessionStore(settings.sessions_db),
        k=settings.retrieval.k,
        max_sources=settings.answer.max_sources,
        history_turns=settings.sessions.history_turns,
    )
    return Services(
        settings=settings,
        embedder=embedder,
        store=store,
        lexical=lexical,
        registry=build_registry(settings),
        retriever=retriever,
        answers=answers,
    )
