"""The HTTP contract. Kept apart from core types so the wire format can stay stable."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, WithJsonSchema, model_validator

from backend.core.types import (
    Answer,
    Hit,
    SearchFilters,
    ShortAnswer,
    WatchEvent,
)

_MAX_QUERY_CHARS = 2000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FromCore(BaseModel):
    """A response shape filled from the core type of the same field names (nested ones too)."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def from_core(cls, obj: object) -> Self:
        return cls.model_validate(obj)


def _iso_day(value: object) -> object:
    """Days in a request are ISO strings, strictly: a number is not coerced to a day of 1970."""
    if isinstance(value, date | None):  # already a day (a test or a Python caller building the model)
        return value
    if not isinstance(value, str):
        raise ValueError("a date must be an ISO string, YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not an ISO date (YYYY-MM-DD): {value[:40]!r}") from exc


IsoDate = Annotated[date, BeforeValidator(_iso_day), WithJsonSchema({"type": "string", "format": "date"})]


class FiltersIn(Strict):
    sources: list[str] = Field(default_factory=list, max_length=50)
    published_after: IsoDate | None = None
    published_before: IsoDate | None = None

    @model_validator(mode="after")
    def _ordered(self) -> FiltersIn:
        if self.published_after and self.published_before and self.published_after > self.published_before:
            raise ValueError("published_after must not be later than published_before")
        return self

    def to_core(self) -> SearchFilters:
        return SearchFilters(
            sources=tuple(s for s in self.sources if s.strip()),
            published_after=self.published_after,
            published_before=self.published_before,
        )


class SearchRequest(Strict):
    query: str = Field(min_length=1, max_length=_MAX_QUERY_CHARS)
    k: StrictInt = Field(default=10, ge=1, le=100)
    as_of: IsoDate | None = Field(default=None, description="Day the question is asked; later articles are excluded.")
    filters: FiltersIn | None = None


class SearchResult(BaseModel):
    chunk_id: str
    article_id: str
    url: str | None
    title: str
    source: str | None
    published_at: datetime | None
    text: str
    score: float
    also_in: list[str] = Field(default_factory=list, description="Other outlets that carried the same story.")

    @classmethod
    def from_hit(cls, hit: Hit) -> SearchResult:
        c = hit.chunk
        return cls(
            chunk_id=c.id,
            article_id=c.article_id,
            url=c.url,
            title=c.title,
            source=c.source,
            published_at=c.published_at,
            text=c.text,
            score=round(hit.score, 6),
            also_in=list(hit.also_in),
        )


class WindowOut(FromCore):
    start: date | None
    end: date | None
    phrase: str = Field(description="The words of the question the window was read from.")


class ReadingOut(FromCore):
    """How the question was read: the time window and outlets it names (used to filter or rank)."""

    window: WindowOut | None
    sources: list[str]
    source_phrase: str


class SearchResponse(BaseModel):
    results: list[SearchResult]
    as_of: date
    reading: ReadingOut


class AskRequest(Strict):
    question: str = Field(min_length=1, max_length=_MAX_QUERY_CHARS)
    session_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    as_of: IsoDate | None = None
    filters: FiltersIn | None = None
    k: StrictInt | None = Field(default=None, ge=1, le=50)


class SourceOut(FromCore):
    n: int
    article_id: str
    url: str | None
    title: str
    source: str | None
    published_at: datetime | None
    also_in: list[str] = Field(default_factory=list, description="Other outlets that carried the same story.")


class CitationOut(SourceOut):
    """A source the answer cites, with the passage it cites."""

    snippet: str


class ShortAnswerOut(BaseModel):
    """The few words that answer the question, the citation that says them, and how far to trust them."""

    text: str = Field(description="The answer in a few words: a name, a date, a number.")
    n: int = Field(description="The citation (its `n` in `citations`) whose article says it.")
    confidence: float = Field(
        ge=0, le=1, description="Calibrated: of short answers given with confidence 0.6, about 60% were right."
    )
    outlets: list[str] = Field(description="The distinct outlets whose passages support it.")
    sure: bool = Field(
        description="Confidence reaches the server's threshold (answer.min_confidence); when false the short "
        "answer is a guess, to be shown as not sure rather than as the answer."
    )

    @classmethod
    def from_core(cls, short: ShortAnswer, min_confidence: float) -> ShortAnswerOut:
        return cls(
            text=short.text,
            n=short.n,
            # Clamped: a calibration's float error must not turn a whole answer into a 500.
            confidence=round(min(max(short.confidence, 0.0), 1.0), 4),
            outlets=list(short.outlets),
            sure=short.confidence >= min_confidence,
        )


class AskResponse(BaseModel):
    answer: str
    citations: list[CitationOut]
    session_id: str
    rewritten_query: str
    as_of: date
    reading: ReadingOut
    degraded: bool = Field(description="The configured language model did not write this answer.")
    degraded_reason: str | None = None
    short_answer: ShortAnswerOut | None = Field(
        default=None,
        description="The answer in a few words, where the archive's passages give one; null otherwise "
        "(nothing found, or a language model's answer).",
    )

    @classmethod
    def from_core(cls, a: Answer, as_of: date, min_confidence: float) -> AskResponse:
        """``min_confidence``: the server's threshold below which a short answer is not ``sure``."""
        short = a.short_answer
        return cls(
            answer=a.text,
            citations=[CitationOut.from_core(c) for c in a.citations],
            session_id=a.session_id,
            rewritten_query=a.rewritten_query,
            as_of=as_of,
            reading=ReadingOut.from_core(a.reading),
            degraded=a.degraded is not None,
            degraded_reason=a.degraded,
            short_answer=ShortAnswerOut.from_core(short, min_confidence) if short else None,
        )


class HealthResponse(BaseModel):
    status: str
    chunks: int | None


class StreamStart(BaseModel):
    """The first event of ``/ask/stream``: how the question was read and what it will be answered from."""

    session_id: str
    rewritten_query: str
    as_of: date
    reading: ReadingOut
    sources: list[SourceOut]


class SessionSummaryOut(FromCore):
    id: str
    created_at: datetime
    updated_at: datetime
    turns: int
    first_question: str


class SessionList(BaseModel):
    sessions: list[SessionSummaryOut]


class TurnOut(FromCore):
    question: str
    rewritten_query: str
    answer: str
    citations: list[CitationOut]


class SessionOut(BaseModel):
    id: str
    turns: list[TurnOut]


class OutletOut(BaseModel):
    name: str
    articles: int


class ArchiveOut(BaseModel):
    articles: int
    chunks: int
    first_published: datetime | None
    last_published: datetime | None
    last_ingest: datetime | None
    outlets: list[OutletOut]


class CopyOut(BaseModel):
    id: str
    url: str | None
    source: str | None


class ArticleOut(BaseModel):
    """An article as stored: metadata, the outlets that carried copies of it, and its full text."""

    id: str
    title: str
    url: str | None
    source: str | None
    published_at: datetime | None
    cluster_id: str
    copies: list[CopyOut]
    text: str


class ReadyOut(BaseModel):
    status: str
    checks: dict[str, str]


class FeedbackRequest(Strict):
    session_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    turn: StrictInt = Field(ge=0, le=10_000, description="Which answer of the conversation: 0 is the first.")
    rating: Literal["up", "down"]
    comment: str = Field(default="", max_length=2000)


class FeedbackCreated(BaseModel):
    id: int


class ArticleIn(BaseModel):
    """One article as a JSONL line of ``byline ingest`` would give it; other fields are kept as metadata."""

    model_config = ConfigDict(extra="allow")

    id: str | None = Field(default=None, max_length=500)
    url: str | None = Field(default=None, max_length=2000)
    title: str | None = Field(default=None, max_length=2000)
    # Optional here so that an article without text fails alone (status "failed"), not the request.
    text: str | None = None
    published_at: str | None = Field(default=None, max_length=100)
    source: str | None = Field(default=None, max_length=500)
    authors: list[str] | str | None = None


class ArticlesIn(Strict):
    articles: list[ArticleIn] = Field(min_length=1)


class ArticleOutcomeOut(FromCore):
    index: int = Field(description="The article's place in the request, from 0.")
    id: str | None
    status: Literal["new", "updated", "unchanged", "copy", "failed"]
    detail: str


class ArticlesAdded(BaseModel):
    results: list[ArticleOutcomeOut]


class FileOutcomeOut(FromCore):
    name: str
    records: int
    new: int
    updated: int
    unchanged: int
    copies: int
    errors: list[str] = Field(description="Every record or file that was not ingested, with the reason.")
    warnings: list[str]


class FileFormatOut(FromCore):
    name: str
    label: str = Field(description="The format for people, e.g. 'JSON Lines'.")
    suffixes: list[str] = Field(description="Lowercase, with the dot: '.jsonl'.")


class FormatsOut(BaseModel):
    formats: list[FileFormatOut]
    suffixes: list[str] = Field(
        description="Every suffix of every format: what a file picker offers. A name with no suffix is read "
        "by its first bytes; any other is refused."
    )


class FilesAdded(BaseModel):
    files: list[FileOutcomeOut]


class RemovalOut(BaseModel):
    kind: Literal["article", "copy"]
    id: str
    article_id: str = Field(description="The stored article (for a copy: the one it repeats).")
    chunks: int = Field(description="Chunks removed from the indexes.")


class FeedIn(Strict):
    url: str = Field(
        min_length=1, max_length=2000, description="An RSS or Atom feed, or a news sitemap (http or https)."
    )
    title: str | None = Field(
        default=None,
        max_length=200,
        description="The outlet's name, given to its articles (else a news sitemap's, the page's or the feed's).",
    )
    interval_s: float | None = Field(
        default=None, ge=1.0, le=7 * 86_400.0, description="Seconds between polls (else `BYLINE_FOLLOW__INTERVAL_S`)."
    )


class FeedHealthOut(BaseModel):
    status: Literal["pending", "ok", "not_modified", "error"] = Field(
        description="The last poll: `pending` (not polled yet), `ok`, `not_modified` (HTTP 304) or `error`."
    )
    http_status: int | None
    last_fetch_at: datetime | None
    next_poll_at: datetime
    failures: int = Field(description="Failed polls in a row; each doubles the wait, up to a day.")
    new_articles: int = Field(description="Articles the last poll stored.")
    total_articles: int = Field(description="Articles this source brought since it was followed.")
    last_error: str | None


class FeedOut(BaseModel):
    id: str
    url: str
    title: str | None = Field(description="The outlet's name the source was given, else the feed's own title.")
    kind: Literal["rss", "atom", "sitemap", "sitemap_index"] | None = Field(description="Known after the first poll.")
    added_at: datetime
    interval_s: float = Field(description="Seconds between polls, as scheduled (the feed's `ttl` can shorten it).")
    health: FeedHealthOut


class FeedList(BaseModel):
    feeds: list[FeedOut]


class ArticleSummaryOut(BaseModel):
    id: str
    title: str
    url: str | None
    source: str | None
    published_at: datetime | None
    chunks: int


class ArticleList(BaseModel):
    articles: list[ArticleSummaryOut]
    total: int = Field(description="Articles matching the filters, on all pages.")


class WatchIn(Strict):
    question: str = Field(min_length=1, max_length=500)
    filters: FiltersIn | None = None
    webhook_url: str | None = Field(
        default=None,
        max_length=2000,
        description="Where each event is also POSTed, signed (docs/operations.md). Must resolve to a public address.",
    )


class FiltersOut(FromCore):
    sources: list[str]
    published_after: date | None
    published_before: date | None


class WatchOut(FromCore):
    """A saved question, checked against every new article."""

    id: str
    question: str
    filters: FiltersOut
    webhook_url: str | None
    created_at: datetime
    unread: int = Field(description="Events not yet marked read.")
    events: int
    last_event_at: datetime | None
    webhook_secret: str | None = Field(
        default=None,
        description="The key that signs this watch's webhook deliveries: only in the response that made the watch.",
    )


class WatchList(BaseModel):
    watches: list[WatchOut]
    unread: int = Field(description="Unread events over all the caller's watches (the chat's badge).")


class EventArticleOut(FromCore):
    id: str
    title: str
    url: str | None
    source: str | None
    published_at: datetime | None


class EventAnswerOut(BaseModel):
    text: str
    short_answer: ShortAnswerOut | None
    citations: list[CitationOut]


class EventOut(BaseModel):
    """A new article answered the saved question: the answer ``/ask`` would have given from it."""

    id: str
    watch_id: str
    created_at: datetime
    read: bool
    article: EventArticleOut
    answer: EventAnswerOut

    @classmethod
    def from_core(cls, event: WatchEvent, min_confidence: float) -> EventOut:
        short = event.short_answer
        return cls(
            id=event.id,
            watch_id=event.watch_id,
            created_at=event.created_at,
            read=event.read,
            article=EventArticleOut.from_core(event.article),
            answer=EventAnswerOut(
                text=event.answer,
                short_answer=ShortAnswerOut.from_core(short, min_confidence) if short else None,
                citations=[CitationOut.from_core(c) for c in event.citations],
            ),
        )


class EventList(BaseModel):
    events: list[EventOut]
