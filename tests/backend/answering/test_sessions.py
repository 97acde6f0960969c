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
