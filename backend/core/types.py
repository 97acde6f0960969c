"""Domain types that cross layer boundaries; LangChain and Chroma objects stay inside their layers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True, slots=True)
class Article:
    id: str
    text: str
    title: str = ""
    url: str | None = None
    source: str | None = None
    published_at: datetime | None = None  # timezone-aware, UTC
    authors: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Chunk:
    id: str
    article_id: str
    position: int
    text: str
    title: str = ""
    url: str | None = None
    source: str | None = None
    published_at: datetime | None = None
    # Story cluster: the id of the first stored article of the same (near-duplicate) story.
    cluster_id: str | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float  # higher is better; its scale depends on the retriever (cosine, BM25, fused)
    # Other outlets that carried the same story (wire copies), collapsed into this hit.
    also_in: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchFilters:
    sources: tuple[str, ...] = ()
    published_after: date | None = None
    published_before: date | None = None


@dataclass(frozen=True, slots=True)
class DateWindow:
    """A span of days read from a question ("last week", "since May"); open ends are None."""

    start: date | None
    end: date | None
    phrase: str = ""  # the words it was read from

    def contains(self, day: date) -> bool:
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)


@dataclass(frozen=True, slots=True)
class Reading:
    """How a question was read before retrieval: the time and outlets it names, in its own words."""

    window: DateWindow | None = None
    sources: tuple[str, ...] = ()  # outlets of the archive the question names
    source_phrase: str = ""
    text: str = ""  # the question without its time words, for retrievers that use the window


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str
    k: int = 10
    # The day the question is asked: nothing published after it is used. Undated articles pass.
    as_of: date | None = None
    filters: SearchFilters = SearchFilters()
    # What the question itself says about time and outlets. Advisory: the news retriever filters
    # or boosts by it, the plain ones (dense, bm25, hybrid) ignore it.
    reading: Reading = Reading()


@dataclass(frozen=True, slots=True)
class Source:
    """One retrieved article as the answerer sees it, numbered for citation."""

    n: int
    article_id: str
    title: str
    url: str | None
    source: str | None
    published_at: datetime | None
    hits: tuple[Hit, ...]
    also_in: tuple[str, ...] = ()  # other outlets that carried the same story

    @property
    def score(self) -> float:
        return max(hit.score for hit in self.hits)


@dataclass(frozen=True, slots=True)
class Citation:
    n: int
    article_id: str
    url: str | None
    title: str
    source: str | None
    published_at: datetime | None
    snippet: str
    also_in: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ShortAnswer:
    """The few words that answer the question, and how far to trust them.

    ``n`` is the source that says it; ``outlets`` are the distinct outlets whose passages support it;
    ``confidence`` is calibrated on the dev set: of answers given with confidence 0.6, about 60% were right.
    """

    text: str
    n: int
    confidence: float
    outlets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Draft:
    """What an answer generator returns: text with ``[n]`` markers referring to ``Source.n``."""

    text: str
    # Supporting passage per cited source number, where the generator knows it.
    snippets: Mapping[int, str] = field(default_factory=dict)
    # Why the configured language model did not write this answer (down, too slow), if it did not.
    degraded: str | None = None
    short_answer: ShortAnswer | None = None
    # The reader's best candidates with their evidence, one line each: what a language model is shown.
    hints: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    citations: tuple[Citation, ...]
    session_id: str
    rewritten_query: str
    # Articles the generator was given, in source order: what a citation may point to.
    retrieved: tuple[str, ...] = ()
    reading: Reading = Reading()
    degraded: str | None = None
    short_answer: ShortAnswer | None = None  # its ``n`` numbers a citation of this answer


@dataclass(frozen=True, slots=True)
class Turn:
    question: str
    rewritten_query: str
    answer: str
    citations: tuple[Citation, ...] = ()


OutcomeStatus = Literal["new", "updated", "unchanged", "copy", "failed"]


@dataclass(frozen=True, slots=True)
class ArticleOutcome:
    """What became of one article sent to the archive (``index``: its place in the request)."""

    index: int
    id: str | None
    status: OutcomeStatus
    detail: str


@dataclass(frozen=True, slots=True)
class FileFormat:
    """A kind of file the archive writer reads, and the name suffixes that say so (lowercase, with the dot)."""

    name: str
    label: str
    suffixes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """One uploaded file's ingest: counts, and every record that failed with the reason."""

    name: str
    records: int
    new: int
    updated: int
    unchanged: int
    copies: int
    errors: tuple[str, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Removal:
    kind: Literal["article", "copy"]
    id: str
    article_id: str
    chunks: int

    def __str__(self) -> str:
        if self.kind == "article":
            return f"deleted article {self.id} ({self.chunks} chunks)"
        return f"deleted copy {self.id} of article {self.article_id} (its chunks stay with the article)"


@dataclass(frozen=True, slots=True)
class ArticleRecord:
    """What the article registry knows of one stored article (its chunks are in the vector store)."""

    id: str
    text_hash: str
    content_hash: str
    cluster_id: str
    title: str
    url: str | None
    source: str | None
    published_at: str | None
    origin: str | None
    chunks: int
    signature: np.ndarray | None = None  # MinHash, for finding near-duplicates


@dataclass(frozen=True, slots=True)
class Copy:
    """An exact copy of a stored article, published under another id, URL or outlet."""

    copy_id: str
    article_id: str
    url: str | None
    source: str | None
    origin: str | None


@dataclass(frozen=True, slots=True)
class SessionSummary:
    id: str
    created_at: datetime
    updated_at: datetime
    turns: int
    first_question: str


@dataclass(frozen=True, slots=True)
class Watch:
    """A saved question: checked against every ingest batch's new articles (``backend.answering.watch``).

    Belongs to an owner (an API key's digest, "" without keys), like a conversation. ``webhook_secret`` signs
    the events posted to ``webhook_url``; the API shows it once, when the watch is made."""

    id: str
    owner: str
    question: str
    filters: SearchFilters
    created_at: datetime
    webhook_url: str | None = None
    webhook_secret: str | None = None
    unread: int = 0
    events: int = 0
    last_event_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EventArticle:
    """The new article that answered a saved question."""

    id: str
    title: str
    url: str | None
    source: str | None
    published_at: datetime | None


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """A new article answered a saved question: the answer as ``/ask`` would give it from that article."""

    id: str
    watch_id: str
    article: EventArticle
    answer: str
    citations: tuple[Citation, ...]
    short_answer: ShortAnswer | None
    created_at: datetime
    read: bool = False


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event owed to a webhook: how often it was tried, when next, and why the last try failed."""

    event_id: str
    watch_id: str
    url: str
    secret: str
    attempts: int
    last_error: str | None = None
