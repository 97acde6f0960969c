"""The one place that builds the object graph from settings and chooses implementations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace

from langchain_core.language_models import BaseChatModel

from backend.answering.chain import AnswerChain
from backend.answering.extractive import ExtractiveAnswerer
from backend.answering.feedback import FeedbackStore
from backend.answering.generative import LLMAnswerer
from backend.answering.providers import build_chat_model
from backend.answering.reader import Reader
from backend.answering.rewrite import LLMCondenser, rewrite_followup
from backend.answering.sessions import SessionStore
from backend.answering.short import ShortAnswerer
from backend.answering.watch import WatchChecker, WatchRunner
from backend.answering.webhooks import WebhookSender
from backend.core.encoder import EncoderIdentity
from backend.core.protocols import (
    AnswerGenerator,
    ArchiveWriter,
    ArticleStore,
    ConversationStore,
    Embedder,
    LexicalStore,
    Retriever,
    VectorStore,
)
from backend.core.types import Turn
from backend.embedding import BatchingEmbedder, CachedEmbedder, build_embedder
from backend.nlp import load_nlp
from backend.pools import Pools
from backend.retrieval.dense import DenseRetriever
from backend.retrieval.hybrid import HybridRetriever
from backend.retrieval.lexical import BM25Retriever
from backend.retrieval.news import NewsRetriever
from backend.retrieval.reading import QueryReader
from backend.retrieval.rerank import CheapReranker, CrossEncoderReranker, Reranker
from backend.settings import RetrievalSettings, Settings
from backend.store.articles import ArticleRegistry
from backend.store.chroma import ChromaStore, open_client
from backend.store.db import database_for
from backend.store.feeds import FeedStore
from backend.store.lexical import LexicalIndex
from backend.store.watches import WatchStore


@dataclass(frozen=True, slots=True)
class Watching:
    """The saved questions' two threads of a server: the checker (``byline-watches``) and the webhook
    deliveries (``byline-webhooks``)."""

    runner: WatchRunner
    sender: WebhookSender

    def stop(self) -> None:
        self.runner.stop()
        self.sender.stop()


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    embedder: Embedder
    store: VectorStore
    lexical: LexicalStore
    registry: ArticleStore
    reader: QueryReader
    retriever: Retriever
    answers: AnswerChain
    sessions: ConversationStore
    feedback: FeedbackStore
    pools: Pools
    feeds: FeedStore
    watches: WatchStore
    # None: a read-only server (POST and DELETE /articles answer 503); see ingest.writer.with_writer.
    writer: ArchiveWriter | None = None
    # None: saved questions are kept but not checked in this process (``start_watching`` starts the threads).
    watching: Watching | None = None

    def close(self) -> None:
        """Shut the worker threads down; the services answer no question afterwards."""
        if self.watching is not None:
            self.watching.stop()
        self.pools.shutdown()


def build_store(settings: Settings, encoder: EncoderIdentity | None = None) -> ChromaStore:
    """With ``encoder``, an archive embedded by another encoder is refused (``EncoderMismatch``), and the
    encoder is recorded with the first vectors; without, the store is opened for what needs no vectors."""
    return ChromaStore(open_client(settings.chroma, settings.chroma_dir), settings.chroma.collection, encoder)


def build_registry(settings: Settings) -> ArticleRegistry:
    return ArticleRegistry(database_for(settings, settings.articles_db))


def build_generator(
    settings: Settings,
    embedder: Embedder,
    chat: BaseChatModel | None = None,
    article_text: Callable[[str], str] | None = None,
    *,
    pool: Executor,
) -> AnswerGenerator:
    """``article_text``: the store's whole-article text, which the reader reads around a passage. ``pool``:
    the services' threads where the model is waited for."""
    quotes = ExtractiveAnswerer(embedder, settings.answer)
    extractive: AnswerGenerator = quotes
    if settings.answer.mode == "short":
        nlp = load_nlp()  # None, with a warning, where the model is absent: then sentences are quoted
        reader = None if nlp is None else Reader(nlp, embedder, article_text, max_sources=settings.answer.max_sources)
        extractive = ShortAnswerer(reader, quotes, settings.answer)
    if chat is None:
        return extractive
    return LLMAnswerer(chat, gate=extractive, timeout_s=settings.llm.timeout_s, pool=pool)


def build_condenser(
    settings: Settings, chat: BaseChatModel | None, *, pool: Executor
) -> Callable[[str, Sequence[Turn]], str]:
    """The follow-up rewriter: the language model where one is configured, else the rules."""
    return LLMCondenser(chat, timeout_s=settings.llm.timeout_s, pool=pool) if chat is not None else rewrite_followup


RETRIEVERS = ("dense", "bm25", "hybrid", "news")


def build_lexical(settings: Settings) -> LexicalIndex:
    return LexicalIndex(database_for(settings, settings.lexical_db))


def retrieval_settings(spec: str, base: RetrievalSettings) -> tuple[str, RetrievalSettings]:
    """``"news:time_mode=boost,rerank=false"``: a retriever name with settings changed for it.

    The evaluation suite compares variants side by side this way; values are validated like
    environment settings, so a typo is an error, not a silent default.
    """
    name, _, options = spec.partition(":")
    if name not in RETRIEVERS:
        raise ValueError(f"unknown retriever {name!r}; known: {', '.join(RETRIEVERS)}")
    overrides: dict[str, str] = {}
    for item in filter(None, (o.strip() for o in options.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in RetrievalSettings.model_fields:
            raise ValueError(f"bad retriever option {item!r} in {spec!r}; options are retrieval settings, key=value")
        overrides[key] = value
    return name, RetrievalSettings.model_validate({**base.model_dump(), **overrides})


def build_reranker(settings: RetrievalSettings, device: str = "cpu") -> Reranker:
    if settings.cross_encoder:
        return CrossEncoderReranker(settings.cross_encoder, device=device)
    return CheapReranker()


def build_retriever(
    spec: str,
    settings: Settings,
    embedder: Embedder,
    store: VectorStore,
    lexical: LexicalStore,
    registry: ArticleStore | None = None,
    pool: Executor | None = None,
) -> Retriever:
    """``pool``: where the news retriever runs BM25 beside the dense search (the services' own)."""
    name, options = retrieval_settings(spec, settings.retrieval)
    dense, bm25 = DenseRetriever(embedder, store), BM25Retriever(lexical, store, options.bm25_min_length)
    match name:
        case "dense":
            return dense
        case "bm25":
            return bm25
        case "hybrid":
            return HybridRetriever(dense, bm25, depth=options.depth)
        case _:
            reranker = build_reranker(options, settings.embedding.device) if options.rerank else None
            return NewsRetriever(dense, bm25, options, reranker=reranker, registry=registry, pool=pool)


def build_services(settings: Settings, embedder: Embedder | None = None) -> Services:
    """``embedder`` lets a caller that already loaded the model (tests, ingest) share it. Raises
    ``EncoderMismatch`` where the archive's vectors were made by another encoder: nothing is served then."""
    embedder = embedder or build_embedder(settings.embedding)
    # Questions and answer sentences go through a cache, then are encoded together with those of concurrent
    # requests; ingest (the writer) uses the model directly.
    asking: Embedder = BatchingEmbedder(embedder) if settings.embedding.batch_queries else embedder
    if settings.embedding.cache_size:
        asking = CachedEmbedder(asking, settings.embedding.cache_size)
    store = build_store(settings, embedder.identity())
    lexical = build_lexical(settings)
    # An index of terms made by another analyzer is rebuilt here, when the server starts, never in a request.
    lexical.ensure_current(store.iter_chunks)
    registry = build_registry(settings)
    reader = QueryReader(registry.outlets)
    # The small stores' tables are made or upgraded here, on start (backend/store/db.py).
    sessions = SessionStore(database_for(settings, settings.sessions_db), settings.sessions.max_age_days)
    pools = Pools.start()
    retriever = build_retriever(settings.retrieval.retriever, settings, asking, store, lexical, registry, pools.lexical)
    # The provider is looked up in its registry (backend/answering/providers.py); "extractive" has no chat model.
    chat = build_chat_model(settings.llm)
    answers = AnswerChain(
        reader,
        retriever,
        build_generator(settings, asking, chat, store.article_text, pool=pools.llm),
        sessions,
        k=settings.retrieval.k,
        max_sources=settings.answer.max_sources,
        history_turns=settings.sessions.history_turns,
        archive_span=registry.span,
        condense=build_condenser(settings, chat, pool=pools.condense),
        in_flight=pools.in_flight,
    )
    return Services(
        settings=settings,
        embedder=embedder,
        store=store,
        lexical=lexical,
        registry=registry,
        reader=reader,
        retriever=retriever,
        answers=answers,
        sessions=sessions,
        feedback=FeedbackStore(database_for(settings, settings.sessions_db)),
        pools=pools,
        feeds=FeedStore(database_for(settings, settings.feeds_db)),
        watches=WatchStore(database_for(settings, settings.watches_db)),
    )


def build_checker(services: Services, *, prefilter: bool = True) -> WatchChecker:
    """The saved questions' checker, reading with the generator ``/ask`` uses, built again on the plain
    embedder: its model calls then run in the checker's own (lower-priority) thread, never in a batch that a
    question waits for (``BatchingEmbedder`` encodes in whichever caller leads)."""
    settings = services.settings
    generator = build_generator(
        settings,
        services.embedder,
        build_chat_model(settings.llm),
        services.store.article_text,
        pool=services.pools.llm,
    )
    return WatchChecker(
        services.watches,
        services.store,
        services.embedder,
        generator,
        k=settings.retrieval.k,
        max_sources=settings.answer.max_sources,
        min_confidence=settings.answer.min_confidence,
        reader=services.reader,
        prefilter=prefilter,
        in_flight=services.pools.in_flight,
    )


def build_sender(services: Services) -> WebhookSender:
    settings = services.settings
    return WebhookSender(services.watches, settings.watches, settings.follow.networks())


def start_watching(services: Services) -> Services:
    """The services of a server that checks saved questions: the checker's and the webhooks' threads started
    (stopped by ``Services.close``). The writer's ``on_stored`` is then ``services.watching.runner.notify``."""
    sender = build_sender(services).start()
    runner = WatchRunner(build_checker(services), services.watches, on_events=sender.notify).start()
    return replace(services, watching=Watching(runner, sender))
