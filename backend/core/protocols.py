"""The swappable parts. Implementations are chosen in one place: ``backend.services.build_services``.

Each protocol says what its callers use, no more, so another implementation (a PostgreSQL one, say) knows
what to provide; ``tests/contracts`` holds the behaviour each implementation must show, one class per
protocol for every implementation to inherit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, runtime_checkable

from backend.core.encoder import EncoderIdentity
from backend.core.types import (
    ArticleOutcome,
    ArticleRecord,
    Chunk,
    Copy,
    Draft,
    FileFormat,
    FileOutcome,
    Hit,
    Removal,
    SearchQuery,
    SessionSummary,
    Source,
    Turn,
)

if TYPE_CHECKING:
    import numpy as np


@runtime_checkable
class Embedder(Protocol):
    def load(self) -> None:
        """Load the model now rather than on first use."""
        ...

    @property
    def dimension(self) -> int: ...

    def identity(self) -> EncoderIdentity:
        """Which encoder this is, so vectors of another are never compared with its own (no model load)."""
        ...

    @property
    def max_tokens(self) -> int:
        """Word pieces the model sees; anything beyond is truncated and invisible to retrieval."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


@runtime_checkable
class VectorStore(Protocol):
    """Chunks with their vectors: nearest-neighbour search under the query's filters, and the chunks as stored."""

    def upsert(
        self,
        chunks: Sequence[Chunk],
        embeddings: Sequence[Sequence[float]],
        extra: Sequence[dict[str, str | int | float | bool]],
    ) -> None:
        """Add or replace chunks by id; ``extra`` is stored beside each (ingest's ``content_hash``)."""
        ...

    def delete(self, chunk_ids: Sequence[str]) -> None: ...

    def chunk_ids_by_article(self, article_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """Existing chunk ids of each article, mapped to the content hash stored with them."""
        ...

    def query(self, embedding: Sequence[float], query: SearchQuery, n: int) -> list[Hit]:
        """The ``n`` nearest chunks that pass the query's filters (``backend.core.filters.matches``), nearest
        first, scored by cosine similarity."""
        ...

    def get_chunks(self, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        """Those of ``chunk_ids`` that are stored (BM25 hits are turned into chunks here)."""
        ...

    def iter_chunks(self) -> Iterator[Chunk]:
        """Every stored chunk (for rebuilding the lexical index and for evaluation)."""
        ...

    def chunks_with_vectors(self, article_ids: Sequence[str]) -> list[tuple[Chunk, list[float]]]:
        """The stored chunks of these articles with their vectors, each article's in position order (for
        comparing a saved question with new articles alone, without a search over the whole archive)."""
        ...

    def article_text(self, article_id: str) -> str:
        """An article's text rebuilt from its chunks in order ("" for an unknown article)."""
        ...

    @property
    def chunked_with(self) -> str | None:
        """The model whose tokenizer cut the stored chunks, which ingest's content hashes name (None: no
        chunks written yet); unchanged by a reindex, so articles chunked alike are found unchanged."""
        ...

    def count(self) -> int: ...


@runtime_checkable
class LexicalStore(Protocol):
    """The BM25 index beside the vector store: it holds exactly the chunks the vector store holds."""

    def add(self, chunks: Iterable[Chunk]) -> None:
        """Add or replace chunks (by id)."""
        ...

    def delete(self, chunk_ids: Sequence[str]) -> None: ...

    def clear(self) -> None: ...

    def mark_pending(self) -> None:
        """Say, durably, that the vector store is about to change before this index follows it."""
        ...

    def settle(self) -> None:
        """Say that this index has followed the vector store's last change."""
        ...

    @property
    def pending(self) -> bool:
        """True between ``mark_pending`` and ``settle`` or a rebuild: the two stores may differ."""
        ...

    def rebuild(self, chunks: Iterable[Chunk]) -> None:
        """Replace everything with ``chunks``, at once for readers, with this process's analyzer (and settle)."""
        ...

    @property
    def stale(self) -> bool:
        """True when the stored terms were made by another analyzer than this process's: never search then."""
        ...

    def ensure_current(self, chunks: Callable[[], Iterable[Chunk]]) -> bool:
        """``rebuild(chunks())`` when stale (once, whoever else opens it meanwhile); True when it did."""
        ...

    def count(self) -> int: ...

    def warm(self) -> None:
        """Load what searching needs now, before the first question."""
        ...

    def search(self, query: SearchQuery, k: int, min_length: int = ...) -> list[tuple[str, float]]:
        """At most ``k`` chunk ids with scores, best first, among the chunks the query's filters allow.

        ``min_length``: the fewest terms a passage counts as in length normalisation (0: plain BM25)."""
        ...


@runtime_checkable
class ArticleStore(Protocol):
    """What is known of whole articles: content hashes, exact copies, story clusters and their MinHash
    signatures, the file each came from. Ingest writes it after the chunks, so it never names an article
    whose chunks are missing."""

    def get(self, article_ids: Sequence[str]) -> dict[str, ArticleRecord]: ...

    def signature_version(self) -> int:
        """The version of the MinHash that made the stored signatures (0: none stored yet)."""
        ...

    def signed_ids(self) -> list[str]: ...

    def resign(self, signatures: Mapping[str, tuple[np.ndarray, Sequence[tuple[int, int]]]], version: int) -> None:
        """Replace articles' signatures and LSH buckets and record their MinHash's version, all at once."""
        ...

    def by_text_hash(self, text_hashes: Sequence[str]) -> dict[str, str]:
        """Stored article id for each known normalised-text hash."""
        ...

    def find(self, id_or_url: str) -> tuple[str | None, Copy | None]:
        """The stored article with this id or URL, or else the copy known by it."""
        ...

    def copies(self, article_ids: Sequence[str]) -> dict[str, list[Copy]]: ...

    def lsh_candidates(self, bands: Sequence[tuple[int, int]]) -> dict[str, np.ndarray]:
        """Signatures of stored articles sharing at least one LSH bucket with ``bands``."""
        ...

    def save(
        self, records: Iterable[ArticleRecord], bands: dict[str, list[tuple[int, int]]], copies: Iterable[Copy]
    ) -> None:
        """Record written articles (replacing them by id) and found copies, all or none."""
        ...

    def delete(self, article_ids: Sequence[str]) -> None:
        """Forget articles, and the copies recorded of them."""
        ...

    def delete_copy(self, copy_id: str) -> None: ...

    def ids_from_origins(self, origins: Sequence[str]) -> set[str]:
        """Articles whose origin file is one of ``origins`` or lies under one of them (a folder)."""
        ...

    def count(self) -> int: ...

    def last_ingested(self) -> str | None:
        """When an article was last written (ISO, UTC)."""
        ...

    def span(self) -> tuple[int, str | None, str | None]:
        """Number of articles and the first and last publication time (ISO, UTC) among the dated."""
        ...

    def outlets(self) -> dict[str, int]:
        """Outlet names with their number of stored articles, most first."""
        ...

    def listing(
        self, limit: int, offset: int = 0, source: str | None = None, title_contains: str | None = None
    ) -> tuple[int, list[ArticleRecord]]:
        """A page of articles, newest first (undated last), with the number that match in all."""
        ...


@runtime_checkable
class ConversationStore(Protocol):
    """Conversation turns, kept across requests. Each conversation belongs to the owner (an API key's
    digest, "" without keys) that started it; to another owner it does not exist (``NotFound``)."""

    def check(self, session_id: str, owner: str = "") -> None:
        """Whether the owner may continue this conversation: a new id may be, another owner's may not."""
        ...

    def history(self, session_id: str, limit: int) -> list[Turn]:
        """The last ``limit`` turns, oldest first ([] for an unknown conversation)."""
        ...

    def append(self, session_id: str, turn: Turn, owner: str = "") -> None: ...

    def turns(self, session_id: str, owner: str = "") -> list[Turn]:
        """Every turn in order; ``NotFound`` when the owner has no such conversation."""
        ...

    def summaries(self, limit: int = 50, offset: int = 0, owner: str = "") -> list[SessionSummary]:
        """The owner's conversations, most recently active first."""
        ...

    def delete(self, session_id: str, owner: str = "") -> None: ...


@runtime_checkable
class Retriever(Protocol):
    def retrieve(self, query: SearchQuery) -> list[Hit]: ...


@runtime_checkable
class AnswerGenerator(Protocol):
    def generate(self, question: str, sources: Sequence[Source], history: Sequence[Turn] = ()) -> Draft:
        """``history``: the conversation's earlier turns, for generators that write with context."""
        ...


@runtime_checkable
class StreamingGenerator(AnswerGenerator, Protocol):
    def stream(self, question: str, sources: Sequence[Source], history: Sequence[Turn] = ()) -> Iterator[str | Draft]:
        """Text pieces as they come, then the finished draft (last)."""
        ...


@runtime_checkable
class ArchiveWriter(Protocol):
    """Writes to the archive through the ingest pipeline, for a server that accepts articles.

    It lives in ``ingest`` (which writes the store) and is handed to the API by the program that
    starts it, so ``backend`` never imports ``ingest``. Raises ``Busy`` while another writer holds
    the data directory and ``NotFound`` for an unknown article."""

    def add(self, records: Sequence[Mapping[str, Any]], origin: str = "api") -> list[ArticleOutcome]: ...

    def formats(self) -> list[FileFormat]:
        """The kinds of file ``add_file`` reads, known by their names' suffixes (ingest's format registry)."""
        ...

    def add_file(self, name: str, data: BinaryIO) -> FileOutcome: ...

    def delete(self, id_or_url: str) -> Removal: ...
