from datetime import UTC, datetime
from pathlib import Path

from backend.answering.sessions import SessionStore
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
