"""The small stores' tables, as SQLAlchemy Core sees them: one definition for SQLite and PostgreSQL.

What the stores read and write. The migrations (``backend/store/migrations/versions``) make these tables and
are frozen copies, never imports of this module, so a later change here needs a new migration beside it.
Times stay ISO 8601 text in UTC, as the SQLite files have always kept them: they compare as text in order,
and a file written before this layer reads the same.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# Conversations, their turns and the readers' feedback: `sessions.sqlite3` on the embedded default.
sessions = Table(
    "sessions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Column("owner", Text, nullable=False, server_default=""),
    Index("sessions_updated", "updated_at"),
    Index("sessions_owner", "owner", "updated_at"),
)
turns = Table(
    "turns",
    metadata,
    Column("session_id", Text, ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("question", Text, nullable=False),
    Column("rewritten_query", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("citations", Text, nullable=False),
    Column("created_at", Text, nullable=False),
)
feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", Text, nullable=False),
    Column("turn", Integer, nullable=False),
    Column("rating", Text, CheckConstraint("rating IN ('up', 'down')"), nullable=False),
    Column("comment", Text, nullable=False),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("citations", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    sqlite_autoincrement=True,
)

# Followed sources and the items taken from them: `feeds.sqlite3`.
sources = Table(
    "sources",
    metadata,
    Column("id", Text, primary_key=True),
    Column("url", Text, nullable=False, unique=True),
    Column("title", Text),
    Column("feed_title", Text),
    Column("kind", Text),
    Column("added_at", Text, nullable=False),
    Column("interval_s", Float),
    Column("ttl_s", Float),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("next_at", Float, nullable=False),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("last_fetch_at", Text),
    Column("last_status", Text, nullable=False, server_default="pending"),
    Column("http_status", Integer),
    Column("last_error", Text),
    Column("last_new", Integer, nullable=False, server_default="0"),
    Column("total_new", Integer, nullable=False, server_default="0"),
)
items = Table(
    "items",
    metadata,
    Column("key", Text, primary_key=True),
    Column("source_id", Text, nullable=False),
    Column("article_id", Text),
    Column("outcome", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="1"),
    Column("detail", Text),
    Column("seen_at", Text, nullable=False),
)

# Saved questions, the queue of articles to check, events and webhook deliveries: `watches.sqlite3`.
watches = Table(
    "watches",
    metadata,
    Column("id", Text, primary_key=True),
    Column("owner", Text, nullable=False),
    Column("question", Text, nullable=False),
    Column("filters", Text, nullable=False),
    Column("webhook_url", Text),
    Column("webhook_secret", Text),
    Column("created_at", Text, nullable=False),
    Index("watches_owner", "owner", "created_at"),
)
pending = Table(
    "pending",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("article_id", Text, nullable=False),
    Column("queued_at", Text, nullable=False),
    Column("claimed_until", Float, nullable=False, server_default="0"),
    sqlite_autoincrement=True,
)
events = Table(
    "events",
    metadata,
    Column("id", Text, primary_key=True),
    Column("watch_id", Text, ForeignKey("watches.id", ondelete="CASCADE"), nullable=False),
    Column("article_id", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("read", Integer, nullable=False, server_default="0"),
    UniqueConstraint("watch_id", "article_id"),
    Index("events_watch", "watch_id", "created_at"),
)
deliveries = Table(
    "deliveries",
    metadata,
    Column("event_id", Text, ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Float),
    Column("last_error", Text),
    Column("delivered_at", Text),
    Index("deliveries_due", "next_attempt_at"),
)

# What the archive knows of whole articles (``backend.store.articles``): `articles.sqlite3`. Its tables but
# ``articles`` itself carry the registry's name, since on PostgreSQL they share one database with every other
# store's (the BM25 index keeps a ``meta`` of its own).
articles = Table(
    "articles",
    metadata,
    Column("id", Text, primary_key=True),
    Column("text_hash", Text, nullable=False),
    Column("content_hash", Text, nullable=False),
    Column("cluster_id", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("url", Text),
    Column("source", Text),
    Column("published_at", Text),
    Column("origin", Text),
    Column("chunks", Integer, nullable=False),
    Column("signature", LargeBinary),  # the MinHash signature's uint32 values, as bytes
    Column("ingested_at", Text, nullable=False),
    Index("articles_text_hash", "text_hash"),
    Index("articles_url", "url"),
    Index("articles_cluster", "cluster_id"),
    Index("articles_origin", "origin"),
)
article_copies = Table(
    "article_copies",
    metadata,
    Column("copy_id", Text, primary_key=True),
    Column("article_id", Text, ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
    Column("url", Text),
    Column("source", Text),
    Column("origin", Text),
    Index("article_copies_article", "article_id"),
    Index("article_copies_url", "url"),
)
article_lsh = Table(
    "article_lsh",
    metadata,
    Column("band", Integer, primary_key=True),
    Column("bucket", BigInteger, primary_key=True),  # a signed 64-bit hash of the band
    Column("article_id", Text, ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Index("article_lsh_article", "article_id"),
    sqlite_with_rowid=False,
)
article_meta = Table(
    "article_meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Integer, nullable=False),
)

# The BM25 index (backend/store/lexical.py): `lexical.sqlite3`. Named lexical_* so that in the one shared
# database they cannot meet another store's tables (the article registry has a meta too).
# Postings name a chunk by its integer `doc`, never reused (AUTOINCREMENT on SQLite, a sequence on PostgreSQL).
lexical_docs = Table(
    "lexical_docs",
    metadata,
    Column("doc", Integer, primary_key=True, autoincrement=True),
    Column("chunk_id", Text, nullable=False, unique=True),
    Column("article_id", Text, nullable=False),
    Column("length", Integer, nullable=False),
    Column("published_ts", BigInteger, nullable=False),
    Column("dated", Integer, nullable=False),
    Column("source_key", Text, nullable=False),
    sqlite_autoincrement=True,
)
lexical_postings = Table(
    "lexical_postings",
    metadata,
    Column("term", Text, primary_key=True),
    Column("doc", Integer, primary_key=True),
    Column("tf", Integer, nullable=False),
    Index("lexical_postings_doc", "doc"),
    sqlite_with_rowid=False,
)
lexical_meta = Table(
    "lexical_meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Integer, nullable=False),
)
