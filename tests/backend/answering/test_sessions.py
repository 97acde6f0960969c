"""What is the SQLite store's own: the count ``expire`` reports, the upgrade of a file from before owners.
What every conversation store does is in ``tests/contracts/conversation_store.py``."""

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backend.answering.sessions import SessionStore
from backend.core.errors import NotFound
from backend.core.types import Turn


def test_sessions_untouched_for_longer_than_the_configured_age_expire(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    store = SessionStore(path, max_age_days=30)
    store.append("stale", Turn("q", "q", "a"))
    store.append("fresh", Turn("q", "q", "a"))
    with sqlite3.connect(path) as db:
        stale = (datetime.now(UTC) - timedelta(days=31)).isoformat()
        db.execute("UPDATE sessions SET updated_at = ? WHERE id = 'stale'", (stale,))
    assert SessionStore(path, max_age_days=0).expire() == 0  # 0 keeps everything
    assert store.expire() == 1
    assert [s.id for s in store.summaries()] == ["fresh"]
    assert store.history("stale", limit=5) == []  # its turns went with it


def test_a_file_from_before_owners_is_upgraded_and_its_conversations_kept(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE sessions (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
            "CREATE TABLE turns (session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
            " position INTEGER NOT NULL, question TEXT NOT NULL, rewritten_query TEXT NOT NULL, answer TEXT NOT NULL,"
            " citations TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (session_id, position));"
            "INSERT INTO sessions VALUES ('old', '2026-11-01T00:00:00+00:00', '2026-11-01T00:00:00+00:00');"
            "INSERT INTO turns VALUES ('old', 0, 'q', 'q', 'a', '[]', '2026-11-01T00:00:00+00:00');"
        )
    store = SessionStore(path)
    assert [(s.id, s.turns) for s in store.summaries()] == [("old", 1)]
    store.append("old", Turn("q2", "q2", "a2"))
    assert [t.question for t in store.turns("old")] == ["q", "q2"]
    with pytest.raises(NotFound):
        store.turns("old", "some-key")
