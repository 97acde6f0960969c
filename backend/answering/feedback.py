"""Readers' thumbs up or down on an answer, kept with the question and answer they judged.

Stored beside the conversations but not tied to them: feedback outlives an expired session,
since it is what the team reads to improve answers (``byline feedback export``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Literal

from backend.core.errors import NotFound
from backend.core.protocols import ConversationStore
from backend.store import sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""

Rating = Literal["up", "down"]


class FeedbackStore(sqlite.SqliteStore):
    schema = _SCHEMA

    def add(
        self,
        sessions: ConversationStore,
        session_id: str,
        turn: int,
        rating: Rating,
        comment: str = "",
        owner: str = "",
    ) -> int:
        """Record feedback on turn ``turn`` (0 = first) of the owner's conversation; NotFound for an unknown turn."""
        turns = sessions.turns(session_id, owner)
        if not 0 <= turn < len(turns):
            raise NotFound(f"conversation {session_id!r} has no turn {turn} (it has {len(turns)})")
        judged = turns[turn]
        citations = [{"n": c.n, "article_id": c.article_id, "title": c.title} for c in judged.citations]
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO feedback (session_id, turn, rating, comment, question, answer, citations, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, turn, rating, comment, judged.question, judged.answer, json.dumps(citations),
                 datetime.now(UTC).isoformat()),
            )  # fmt: skip
            return int(cursor.lastrowid or 0)

    def export(self) -> Iterator[dict[str, object]]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, session_id, turn, rating, comment, question, answer, citations, created_at"
                " FROM feedback ORDER BY id"
            ).fetchall()
        for fid, session_id, turn, rating, comment, question, answer, citations, created_at in rows:
            yield {
                "id": fid, "session_id": session_id, "turn": turn, "rating": rating, "comment": comment,
                "question": question, "answer": answer, "citations": json.loads(citations), "created_at": created_at,
            }  # fmt: skip
