"""``byline db import``: an embedded archive's SQLite stores copied into a real PostgreSQL, whole, once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from backend.answering.feedback import FeedbackStore
from backend.answering.sessions import SessionStore
from backend.core.types import Turn
from backend.embedding import SentenceTransformerEmbedder
from backend.services import build_lexical, build_registry, build_store
from backend.settings import Settings
from backend.store.db import shared_database
from backend.store.feeds import FeedStore
from ingest.pipeline import Ingestor
from ingest.transfer import TransferError, import_state
from tests.conftest import DEMO
from tests.contracts.article_store import same

pytestmark = pytest.mark.integration


@pytest.fixture
def embedded(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> Settings:
    """A data directory of the embedded default with something in every kind of store."""
    settings = Settings(data_dir=tmp_path / "data")
    report = Ingestor(settings, embedder, build_store(settings), build_registry(settings)).ingest([DEMO])
    assert not report.errors, report.summary()
    sessions = SessionStore(settings.sessions_db)
    for n in range(3):
        sessions.append("s1", Turn(f"question {n}", f"query {n}", f"answer {n}"))
    FeedbackStore(settings.sessions_db).add(sessions, "s1", 1, "down", "wrong man")
    FeedStore(settings.feeds_db).add("https://example.org/feed.xml", "Example Wire", 900)
    return settings


def test_every_store_is_copied_and_reads_the_same_on_postgresql(embedded: Settings, postgres_url: str) -> None:
    shared = Settings(data_dir=embedded.data_dir.parent / "replica", database_url=postgres_url)
    copied = {s.branch: s.rows for s in import_state(embedded.data_dir, shared)}
    assert {"articles", "lexical", "sessions", "feeds"} <= set(copied)

    local, remote = build_registry(embedded), build_registry(shared)
    assert remote.ids() == local.ids() and remote.count() == 24
    records, copied_records = local.get(sorted(local.ids())), remote.get(sorted(local.ids()))
    assert copied_records.keys() == records.keys() and all(same(copied_records[i], records[i]) for i in records)
    assert build_lexical(shared).ids() == build_lexical(embedded).ids()

    database = shared_database(postgres_url)
    sessions = SessionStore(database)
    assert [t.question for t in sessions.turns("s1")] == ["question 0", "question 1", "question 2"]
    exported = list(FeedbackStore(database).export())
    assert [(r["turn"], r["comment"]) for r in exported] == [(1, "wrong man")]
    # The database numbers new rows past the copied ones.
    FeedbackStore(database).add(sessions, "s1", 2, "up")
    assert [r["id"] for r in FeedbackStore(database).export()] == [exported[0]["id"], exported[0]["id"] + 1]
    assert [s.title for s in FeedStore(database).sources()] == ["Example Wire"]


def test_a_second_import_is_refused_and_changes_nothing(embedded: Settings, postgres_url: str) -> None:
    shared = Settings(data_dir=embedded.data_dir.parent / "replica", database_url=postgres_url)
    import_state(embedded.data_dir, shared)
    with pytest.raises(TransferError, match="already holds articles rows"):
        import_state(embedded.data_dir, shared)
    assert build_registry(shared).count() == 24
    assert len(SessionStore(shared_database(postgres_url)).turns("s1")) == 3


def test_the_command_needs_a_database_and_says_so(embedded: Settings, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "BYLINE_DATA_DIR": str(tmp_path / "replica")}
    done = subprocess.run(
        [sys.executable, "-m", "byline", "db", "import", str(embedded.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "set BYLINE_DATABASE_URL" in done.stderr


def test_an_import_waits_for_no_replica_that_is_writing(embedded: Settings, postgres_url: str) -> None:
    from ingest.errors import WriterBusyError
    from ingest.lock import writer_lock

    shared = Settings(data_dir=embedded.data_dir.parent / "replica", database_url=postgres_url)
    with writer_lock(shared), pytest.raises(WriterBusyError):  # a replica's ingest holds the archive
        import_state(embedded.data_dir, shared)
    assert build_registry(shared).count() == 0
    assert len(import_state(embedded.data_dir, shared)) >= 4  # once it is done
