"""The data-access layer of the small stores: migrations on both backends (files made before them upgraded in
place, two processes starting at once), the shared database as two replicas see it, and a PostgreSQL outage
as ``StoreUnavailable``. The stores' behaviour is in the contracts (tests/contracts/)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydantic import SecretStr, ValidationError

from backend.answering.feedback import FeedbackStore
from backend.answering.sessions import SessionStore
from backend.core.errors import StoreUnavailable
from backend.core.types import Chunk, Copy, SearchQuery, Turn
from backend.settings import Settings
from backend.store import schema
from backend.store.articles import ArticleRegistry
from backend.store.db import Branch, Database, database_for, shared_database, sqlite_database
from backend.store.feeds import FeedStore
from backend.store.lexical import LexicalIndex
from backend.store.watches import WatchStore
from demo.postgres import PostgresServer
from tests.conftest import free_port
from tests.contracts.article_store import record

# The files as the stores wrote them before migrations existed (their CREATE statements, frozen here).
BEFORE_MIGRATIONS = {
    "sessions": """
        CREATE TABLE sessions (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
            owner TEXT NOT NULL DEFAULT '');
        CREATE TABLE turns (session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            position INTEGER NOT NULL, question TEXT NOT NULL, rewritten_query TEXT NOT NULL, answer TEXT NOT NULL,
            citations TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (session_id, position));
        CREATE INDEX sessions_updated ON sessions(updated_at);
        CREATE INDEX sessions_owner ON sessions(owner, updated_at);
        CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, turn INTEGER NOT NULL,
            rating TEXT NOT NULL CHECK (rating IN ('up', 'down')), comment TEXT NOT NULL, question TEXT NOT NULL,
            answer TEXT NOT NULL, citations TEXT NOT NULL, created_at TEXT NOT NULL);
        INSERT INTO sessions VALUES ('old', '2026-11-01T00:00:00+00:00', '2026-11-01T00:00:00+00:00', 'k');
        INSERT INTO turns VALUES ('old', 0, 'q', 'q', 'a', '[]', '2026-11-01T00:00:00+00:00');
        INSERT INTO feedback (session_id, turn, rating, comment, question, answer, citations, created_at)
            VALUES ('old', 0, 'up', '', 'q', 'a', '[]', '2026-11-01T00:00:00+00:00');
    """,
    "feeds": """
        CREATE TABLE sources (id TEXT PRIMARY KEY, url TEXT NOT NULL UNIQUE, title TEXT, feed_title TEXT, kind TEXT,
            added_at TEXT NOT NULL, interval_s REAL, ttl_s REAL, etag TEXT, last_modified TEXT, next_at REAL NOT NULL,
            failures INTEGER NOT NULL DEFAULT 0, last_fetch_at TEXT, last_status TEXT NOT NULL DEFAULT 'pending',
            http_status INTEGER, last_error TEXT, last_new INTEGER NOT NULL DEFAULT 0,
            total_new INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE items (key TEXT PRIMARY KEY, source_id TEXT NOT NULL, article_id TEXT, outcome TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 1, detail TEXT, seen_at TEXT NOT NULL);
        INSERT INTO sources (id, url, added_at, next_at) VALUES ('s1', 'https://e.org/feed', '2026-11-01', 5.0);
        INSERT INTO items (key, source_id, outcome, seen_at) VALUES ('https://e.org/a', 's1', 'new', '2026-11-01');
    """,
    "watches": """
        CREATE TABLE watches (id TEXT PRIMARY KEY, owner TEXT NOT NULL, question TEXT NOT NULL, filters TEXT NOT NULL,
            webhook_url TEXT, webhook_secret TEXT, created_at TEXT NOT NULL);
        CREATE INDEX watches_owner ON watches(owner, created_at);
        CREATE TABLE pending (seq INTEGER PRIMARY KEY AUTOINCREMENT, article_id TEXT NOT NULL,
            queued_at TEXT NOT NULL, claimed_until REAL NOT NULL DEFAULT 0);
        CREATE TABLE events (id TEXT PRIMARY KEY, watch_id TEXT NOT NULL REFERENCES watches(id) ON DELETE CASCADE,
            article_id TEXT NOT NULL, created_at TEXT NOT NULL, payload TEXT NOT NULL, read INTEGER NOT NULL DEFAULT 0,
            UNIQUE (watch_id, article_id));
        CREATE INDEX events_watch ON events(watch_id, created_at);
        CREATE TABLE deliveries (event_id TEXT PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
            attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL, last_error TEXT, delivered_at TEXT);
        CREATE INDEX deliveries_due ON deliveries(next_attempt_at);
        INSERT INTO watches VALUES ('w1', 'k', 'Who?', '{"sources": []}', NULL, NULL, '2026-11-01T00:00:00+00:00');
        INSERT INTO pending (article_id, queued_at) VALUES ('a1', '2026-11-01T00:00:00+00:00');
    """,
    # A registry from before the MinHash version was recorded (no meta row): signed by the first MinHash.
    "articles": """
        CREATE TABLE articles (id TEXT PRIMARY KEY, text_hash TEXT NOT NULL, content_hash TEXT NOT NULL,
            cluster_id TEXT NOT NULL, title TEXT NOT NULL, url TEXT, source TEXT, published_at TEXT, origin TEXT,
            chunks INTEGER NOT NULL, signature BLOB, ingested_at TEXT NOT NULL);
        CREATE INDEX articles_text_hash ON articles(text_hash);
        CREATE INDEX articles_url ON articles(url);
        CREATE INDEX articles_cluster ON articles(cluster_id);
        CREATE INDEX articles_origin ON articles(origin);
        CREATE TABLE copies (copy_id TEXT PRIMARY KEY, article_id TEXT NOT NULL REFERENCES articles(id)
            ON DELETE CASCADE, url TEXT, source TEXT, origin TEXT);
        CREATE INDEX copies_article ON copies(article_id);
        CREATE INDEX copies_url ON copies(url);
        CREATE TABLE lsh (band INTEGER NOT NULL, bucket INTEGER NOT NULL, article_id TEXT NOT NULL
            REFERENCES articles(id) ON DELETE CASCADE, PRIMARY KEY (band, bucket, article_id)) WITHOUT ROWID;
        CREATE INDEX lsh_article ON lsh(article_id);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO articles VALUES ('a1', 't1', 'c1', 'a1', 'Sector commander named', 'https://e.org/a1', 'Wire',
            '2026-11-01T00:00:00+00:00', '/feeds/a.jsonl', 2, X'0100000002000000', '2026-11-01T00:00:00+00:00');
        INSERT INTO copies VALUES ('c1', 'a1', 'https://other.example/c1', 'Other', NULL);
        INSERT INTO lsh VALUES (0, -9000000000000000000, 'a1');
    """,
    # Docs 6 and 7 were written and deleted since: their numbers are never given again.
    "lexical": """
        CREATE TABLE docs (doc INTEGER PRIMARY KEY AUTOINCREMENT, chunk_id TEXT NOT NULL UNIQUE,
            article_id TEXT NOT NULL, length INTEGER NOT NULL, published_ts INTEGER NOT NULL, dated INTEGER NOT NULL,
            source_key TEXT NOT NULL);
        CREATE TABLE postings (term TEXT NOT NULL, doc INTEGER NOT NULL, tf INTEGER NOT NULL,
            PRIMARY KEY (term, doc)) WITHOUT ROWID;
        CREATE INDEX postings_doc ON postings(doc);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO meta VALUES ('version', 12), ('analyzer', 1);
        INSERT INTO docs VALUES (5, 'a:0', 'a', 3, 1696377600, 1, 'northern-dispatch');
        UPDATE sqlite_sequence SET seq = 7 WHERE name = 'docs';
        INSERT INTO postings VALUES ('qaratapa', 5, 2), ('sector', 5, 1);
    """,
}
BRANCH_TABLES: dict[Branch, set[str]] = {
    "sessions": {"sessions", "turns", "feedback"},
    "feeds": {"sources", "items"},
    "watches": {"watches", "pending", "events", "deliveries"},
    "articles": {"articles", "article_copies", "article_lsh", "article_meta"},
    "lexical": {"lexical_docs", "lexical_postings", "lexical_meta"},
}
HEADS = {f"{branch}_0001" for branch in BRANCH_TABLES}
OPENERS: dict[Branch, Callable[[Path | Database], object]] = {
    "sessions": SessionStore,
    "feeds": FeedStore,
    "watches": WatchStore,
    "articles": ArticleRegistry,
    "lexical": LexicalIndex,
}


def _versions(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def _schema_differences(engine: sa.Engine, tables: set[str]) -> list[object]:
    """What Alembic's autogenerate finds between the migrated tables and ``backend.store.schema``."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"include_object": lambda obj, name, kind, *_: kind != "table" or name in tables},
        )
        return list(compare_metadata(context, schema.metadata))


def test_files_made_before_migrations_are_upgraded_in_place_and_their_rows_kept(tmp_path: Path) -> None:
    for name, script in BEFORE_MIGRATIONS.items():
        with sqlite3.connect(tmp_path / f"{name}.sqlite3") as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(script)
    sessions = SessionStore(tmp_path / "sessions.sqlite3")
    assert [t.question for t in sessions.turns("old", "k")] == ["q"]
    sessions.append("old", Turn("q2", "q2", "a2"), owner="k")
    assert [row["question"] for row in FeedbackStore(tmp_path / "sessions.sqlite3").export()] == ["q"]
    feeds = FeedStore(tmp_path / "feeds.sqlite3")
    assert feeds.get("s1").next_at == 5.0 and feeds.unseen(["https://e.org/a"]) == {}
    watches = WatchStore(tmp_path / "watches.sqlite3")
    assert [w.id for w in watches.owned("k")] == ["w1"] and [a for _, a in watches.claim(10)] == ["a1"]
    registry = ArticleRegistry(tmp_path / "articles.sqlite3")
    assert registry.signature_version() == 1 and registry.ids() == {"a1"} and registry.integrity_ok()
    assert registry.get(["a1"])["a1"].signature.tolist() == [1, 2]  # type: ignore[union-attr]
    assert registry.find("c1") == (None, Copy("c1", "a1", "https://other.example/c1", "Other", None))
    assert set(registry.lsh_candidates([(0, -9_000_000_000_000_000_000)])) == {"a1"}
    with sqlite3.connect(tmp_path / "articles.sqlite3") as db:  # renamed, not copied: the old names are gone
        names = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert not names & {"copies", "lsh", "meta", "copies_article", "copies_url", "lsh_article"}
    lexical = LexicalIndex(tmp_path / "lexical.sqlite3")
    assert lexical.version() == 12 and lexical.analyzer_version() == 1  # renamed, not rewritten: no reload
    assert [cid for cid, _ in lexical.search(SearchQuery("Qaratapa sector"), 10)] == ["a:0"]
    lexical.add([Chunk(id="b:0", article_id="b", position=0, text="Qaratapa again")])
    with sqlite3.connect(tmp_path / "lexical.sqlite3") as db:
        assert db.execute("SELECT doc, chunk_id FROM lexical_docs ORDER BY doc").fetchall() == [(5, "a:0"), (8, "b:0")]
        names = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert "lexical_postings_doc" in names and not names & {"docs", "postings", "meta", "postings_doc"}
    for branch, tables in BRANCH_TABLES.items():
        engine = sqlite_database(tmp_path / f"{branch}.sqlite3").engine
        assert _versions(engine) == {f"{branch}_0001"}
        # Column by column: SQLite reflects a hand-written file's keys a little differently (a TEXT primary key
        # as nullable), which autogenerate would list although nothing differs for the stores.
        inspector = sa.inspect(engine)
        for table in tables:
            assert [c["name"] for c in inspector.get_columns(table)] == list(schema.metadata.tables[table].c.keys())
    OPENERS["sessions"](tmp_path / "sessions.sqlite3")  # opened again: nothing to do
    assert [t.question for t in SessionStore(tmp_path / "sessions.sqlite3").turns("old", "k")] == ["q", "q2"]


def test_a_new_sqlite_file_is_in_wal_mode_with_its_version_and_the_stores_schema(tmp_path: Path) -> None:
    for branch, opener in OPENERS.items():
        opener(tmp_path / "new" / f"{branch}.sqlite3")
        engine = sqlite_database(tmp_path / "new" / f"{branch}.sqlite3").engine
        assert _schema_differences(engine, BRANCH_TABLES[branch]) == []
    with sqlite3.connect(tmp_path / "new" / "watches.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("watches_0001",)]


@pytest.mark.integration
def test_one_postgresql_database_holds_every_store_at_its_newest_revision(postgres_url: str) -> None:
    database = shared_database(postgres_url)
    for opener in OPENERS.values():
        opener(database)
    assert _versions(database.engine) == HEADS
    assert _schema_differences(database.engine, set().union(*BRANCH_TABLES.values())) == []


def _migrate_at_once(databases: list[Database]) -> None:
    """Every database object migrates every branch at the same moment, as replicas starting together would."""
    start, failures = threading.Barrier(len(databases)), []

    def migrate(database: Database) -> None:
        start.wait()
        try:
            for branch in BRANCH_TABLES:
                database.migrate(branch)
        except Exception as exc:  # reported below, with the others
            failures.append(exc)

    threads = [threading.Thread(target=migrate, args=(d,)) for d in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []


def test_processes_starting_together_on_one_sqlite_file_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "all.sqlite3"
    _migrate_at_once([sqlite_database(path) for _ in range(4)])
    assert _versions(sqlite_database(path).engine) == HEADS


@pytest.mark.integration
def test_replicas_starting_together_on_postgresql_migrate_once(postgres_url: str) -> None:
    engines = [sa.create_engine(postgres_url) for _ in range(4)]
    try:
        _migrate_at_once([Database(engine) for engine in engines])
        assert _versions(engines[0]) == HEADS
    finally:
        for engine in engines:
            engine.dispose()


@pytest.mark.integration
def test_two_replicas_see_each_others_conversations_and_feedback_at_once(postgres_url: str) -> None:
    a, b = Database(sa.create_engine(postgres_url)), Database(sa.create_engine(postgres_url))
    try:
        sessions_a, sessions_b = SessionStore(a), SessionStore(b)
        sessions_a.append("s", Turn("Who commands the sector?", "Who commands the sector?", "Mardan Salih [1]."), "k")
        assert [t.question for t in sessions_b.history("s", limit=5)] == ["Who commands the sector?"]
        sessions_b.check("s", "k")
        sessions_b.append("s", Turn("What did he say?", "What did Mardan Salih say?", "He said [1]."), "k")
        assert [t.question for t in sessions_a.turns("s", "k")] == ["Who commands the sector?", "What did he say?"]
        feedback_a, feedback_b = FeedbackStore(a), FeedbackStore(b)
        first = feedback_a.add(sessions_a, "s", 0, "up", owner="k")
        second = feedback_b.add(sessions_b, "s", 1, "down", "vague", owner="k")
        exported = list(feedback_b.export())
        assert [(row["id"], row["turn"], row["rating"]) for row in exported] == [(first, 0, "up"), (second, 1, "down")]
        assert list(feedback_a.export()) == exported
    finally:
        a.engine.dispose()
        b.engine.dispose()


@pytest.mark.integration
def test_two_replicas_see_each_others_articles_clusters_and_signatures_at_once(postgres_url: str) -> None:
    a, b = Database(sa.create_engine(postgres_url)), Database(sa.create_engine(postgres_url))
    try:
        first, second = ArticleRegistry(a), ArticleRegistry(b)
        wire = Copy("c1", "a1", "https://wire.example/c1", "Wire", None)
        first.save([record("a1"), record("a2")], {"a1": [(0, 11)], "a2": [(1, 12)]}, [wire])
        assert second.ids() == {"a1", "a2"} and second.copies(["a1"]) == {"a1": [wire]}
        assert set(second.lsh_candidates([(0, 11), (1, 12)])) == {"a1", "a2"}
        second.resign({"a1": (np.full(8, 7, dtype=np.uint32), [(3, 3)])}, 9)
        assert first.signature_version() == 9 and set(first.lsh_candidates([(3, 3)])) == {"a1"}
        second.delete(["a1"])
        assert first.ids() == {"a2"} and first.find("c1") == (None, None) and first.lsh_candidates([(3, 3)]) == {}
        assert first.integrity_ok() and second.integrity_ok()
    finally:
        a.engine.dispose()
        b.engine.dispose()


@pytest.mark.integration
def test_a_postgresql_outage_is_store_unavailable_and_the_store_recovers(
    postgres: PostgresServer, postgres_url: str
) -> None:
    sessions = SessionStore(shared_database(postgres_url))
    watches = WatchStore(shared_database(postgres_url))
    sessions.append("s", Turn("q", "q", "a"))
    postgres.stop()
    try:
        for call in (lambda: sessions.history("s", limit=5), lambda: sessions.append("s", Turn("q", "q", "a")),
                     lambda: watches.claim(10)):  # fmt: skip
            with pytest.raises(StoreUnavailable, match="database does not answer") as raised:
                call()
            assert raised.value.status == 503 and raised.value.retry_after_s > 0
    finally:
        postgres.start()
    sessions.append("s", Turn("q2", "q2", "a2"))  # the same objects, no restart
    assert [t.question for t in sessions.history("s", limit=5)] == ["q", "q2"] and watches.claim(10) == []


def test_a_database_that_does_not_answer_is_store_unavailable_on_start() -> None:
    closed = f"postgresql+psycopg://byline@127.0.0.1:{free_port()}/byline"
    with pytest.raises(StoreUnavailable):
        SessionStore(shared_database(closed))


def test_the_database_url_is_postgresql_through_psycopg(tmp_path: Path) -> None:
    def url(raw: str) -> str | None:
        found = Settings(data_dir=tmp_path, database_url=SecretStr(raw)).database_url
        return None if found is None else found.get_secret_value()

    assert url("postgres://u:p@db:5432/byline") == url("postgresql://u:p@db:5432/byline")
    assert url("postgresql://u:p@db:5432/byline") == "postgresql+psycopg://u:p@db:5432/byline"
    assert url("") is None and Settings(data_dir=tmp_path).database_url is None
    with pytest.raises(ValidationError, match="postgresql://"):
        url("mysql://u:p@db/byline")
    embedded = database_for(Settings(data_dir=tmp_path), tmp_path / "feeds.sqlite3")
    assert not embedded.shared
    assert database_for(Settings(database_url=SecretStr("postgresql://u@h/d")), tmp_path / "x").shared
