"""What every ``ConversationStore`` (the sessions of follow-up questions) does.

An implementation's suite subclasses ``ConversationStoreContract`` and provides ``make_store``: a callable
that opens the test's store, empty at first, with conversations expiring after ``max_age_days`` (0: never);
each call opens the same store again, as another process would.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

import pytest

from backend.core.errors import NotFound
from backend.core.protocols import ConversationStore
from backend.core.types import Citation, Turn


class MakeStore(Protocol):
    def __call__(self, max_age_days: float = 0.0) -> ConversationStore: ...


CITATION = Citation(
    1, "a1", "https://example.org/a1", "Title", "Outlet", datetime(2023, 10, 4, tzinfo=UTC), "snippet", ("Wire",)
)


def turn(question: str, answer: str = "an answer") -> Turn:
    return Turn(question, f"rewritten {question}", answer)


class ConversationStoreContract:
    def test_it_is_a_conversation_store(self, make_store: MakeStore) -> None:
        assert isinstance(make_store(), ConversationStore)

    def test_turns_come_back_in_order_from_another_handle(self, make_store: MakeStore) -> None:
        store = make_store()
        for i in range(4):
            store.append("s1", Turn(f"q{i}", f"r{i}", f"a{i} [1]", (CITATION,)))
        store.append("s2", turn("other"))
        again = make_store()
        history = again.history("s1", limit=3)
        assert [t.question for t in history] == ["q1", "q2", "q3"] and history[-1] == Turn(
            "q3", "r3", "a3 [1]", (CITATION,)
        )
        assert [t.question for t in again.turns("s1")] == ["q0", "q1", "q2", "q3"]
        assert again.history("s1", limit=0) == [] and again.history("unknown", limit=3) == []

    def test_conversations_are_listed_newest_first_and_deleted(self, make_store: MakeStore) -> None:
        store = make_store()
        store.append("old", turn("first old"))
        store.append("new", turn("first new"))
        store.append("new", turn("second new"))
        summaries = store.summaries()
        assert [(s.id, s.turns, s.first_question) for s in summaries] == [
            ("new", 2, "first new"),
            ("old", 1, "first old"),
        ]
        assert summaries[0].updated_at >= summaries[0].created_at
        assert [s.id for s in store.summaries(limit=1, offset=1)] == ["old"]
        store.delete("old")
        with pytest.raises(NotFound):
            store.turns("old")
        with pytest.raises(NotFound):
            store.delete("old")
        assert [s.id for s in store.summaries()] == ["new"]

    def test_each_owner_sees_and_continues_only_its_own_conversations(self, make_store: MakeStore) -> None:
        store = make_store()
        store.append("a1", turn("alice asks"), owner="alice")
        store.append("b1", turn("bob asks"), owner="bob")
        assert [s.id for s in store.summaries(owner="alice")] == ["a1"]
        assert store.summaries() == []  # the server without keys has none of them
        store.check("a1", "alice")
        store.check("new-id", "bob")  # a new conversation may be started under any id not taken
        for refused in (
            lambda: store.check("a1", "bob"),
            lambda: store.turns("a1", "bob"),
            lambda: store.turns("unknown", "alice"),
            lambda: store.delete("a1", "bob"),
            lambda: store.append("a1", turn("bob adds"), owner="bob"),
        ):
            with pytest.raises(NotFound, match="no conversation"):
                refused()
        assert [t.question for t in store.turns("a1", "alice")] == ["alice asks"]

    def test_conversations_untouched_for_longer_than_the_age_expire(self, make_store: MakeStore) -> None:
        store = make_store(max_age_days=0.3 / 86_400)  # 0.3 seconds
        store.append("stale", turn("q"))
        time.sleep(0.5)
        store.append("fresh", turn("q"))  # a write expires what is older
        assert [s.id for s in store.summaries()] == ["fresh"] and store.history("stale", limit=5) == []
        kept = make_store()  # 0: kept for ever
        time.sleep(0.5)
        kept.append("another", turn("q"))
        assert {s.id for s in kept.summaries()} == {"fresh", "another"}
