"""The swappable parts. Implementations are chosen in one place: ``backend.services.build_services``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, BinaryIO, Protocol, runtime_checkable

from backend.core.encoder import EncoderIdentity
from backend.core.types import (
    ArticleOutcome,
    Chunk,
    Draft,
    FileFormat,
    FileOutcome,
    Hit,
    Removal,
    SearchQuery,
    Source,
    Turn,
)


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
    def upsert(
        self,
        chunks: Sequence[Chunk],
        embeddings: Sequence[Sequence[float]],
        extra: Sequence[dict[str, str | int | float | bool]],
    ) -> None: ...

    def delete(self, chunk_ids: Sequence[str]) -> None: ...

    def chunk_ids_by_article(self, article_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """Existing chunk ids of each article, mapped to the content hash stored with them."""
        ...

    def query(self, embedding: Sequence[float], query: SearchQuery, n: int) -> list[Hit]: ...

    def count(self) -> int: ...


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

    def add(self, records: Sequence[Mapping[str, Any]]) -> list[ArticleOutcome]: ...

    def formats(self) -> list[FileFormat]:
        """The kinds of file ``add_file`` reads, known by their names' suffixes (ingest's format registry)."""
        ...

    def add_file(self, name: str, data: BinaryIO) -> FileOutcome: ...

    def delete(self, id_or_url: str) -> Removal: ...
