import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backend.answering.sessions import SessionStore
from backend.core.errors import NotFound
from backend.core.types import Citation, Turn


def test_turns_survive_a_new_store_on_the_same_file_in_order(tmp_path: Path) -> None:
    citation = Citation(1, "a1", "https://example.org/a1", "Title", "Outlet", datetime(2023, 10, 4, tzinfo=UTC), "s")
    store = SessionStore(tmp_path / "sessions.db")
    for i in range(4):
        store.append("s1", Turn(f"q{i}", f"r{i}", f"a{i} [1]", (citation,)))
    store.append("s2", Turn("other", "other", "x"))

    reopened = SessionStore(tmp_path / "sessions.db")
    history = reopened.history("s1", limit=3)
    assert [t.question for t in history] == ["q1", "q2", "q3"]
    assert history[-1].citations == (citation,)
    assert reopened.history("s1", limit=0) == []
    assert reopened.history("unknown", limit=3) == []


def test_sessions_are_listed_newest_first_and_deleted(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "sessions.db")
    store.append("old", Turn("first old", "first old", "a"))
    store.append("new", Turn("first new", "first new", "a"))
    store.append("new", Turn("second new", "second new", "b"))
    summaries = store.summaries()
    assert [(s.id, s.turns, s.first_question) for s in summaries] == [("new", 2, "first new"), ("old", 1, "first old")]
    assert [t.question for t in store.turns("new")] == ["first new", "second new"]
    store.delete("old")
    with pytest.raises(NotFound):
        store.turns("old")
    with pytest.raises(NotFound):
        store.delete("old")


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


def test_each_owner_sees_and_continues_only_its_own_conversations(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "sessions.db")
    store.append("a1", Turn("alice asks", "alice asks", "x"), owner="alice")
    store.append("b1", Turn("bob asks", "bob asks", "y"), owner="bob")
    assert [s.id for s in store.summaries(owner="alice")] == ["a1"]
    assert store.summaries() == []  # the server without keys has none of them
    store.check("a1", "alice")
    store.check("new-id", "bob")  # a new conversation may be started under any id not taken
    for refused in (
        lambda: store.check("a1", "bob"),
        lambda: store.turns("a1", "bob"),
        lambda: store.delete("a1", "bob"),
        lambda: store.append("a1", Turn("bob adds", "bob adds", "z"), owner="bob"),
    ):
        with pytest.raises(NotFound, match="no conversation"):
            refused()
    assert [t.question for t in store.turns("a1", "alice")] == ["alice asks"]


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
