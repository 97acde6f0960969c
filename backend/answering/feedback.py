"""Readers' thumbs up or down on an answer, kept with the question and answer they judged.

Stored beside the conversations but not tied to them: feedback outlives an expired session,
since it is what the team reads to improve answers (``byline feedback export``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import sqlalchemy as sa

from backend.core.errors import NotFound
from backend.core.protocols import ConversationStore
from backend.store.db import Database, opened
from backend.store.schema import feedback

Rating = Literal["up", "down"]


class FeedbackStore:
    def __init__(self, where: Path | Database) -> None:
        """``where``: the conversations' SQLite file of the embedded default, or the shared database."""
        self._db = opened(where, "sessions")

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
        row = sa.insert(feedback).values(
            session_id=session_id,
            turn=turn,
            rating=rating,
            comment=comment,
            question=judged.question,
            answer=judged.answer,
            citations=json.dumps(citations),
            created_at=datetime.now(UTC).isoformat(),
        )
        with self._db.begin() as db:
            return int(db.execute(row.returning(feedback.c.id)).scalar_one())

    def export(self) -> Iterator[dict[str, object]]:
        with self._db.begin() as db:
            rows = db.execute(sa.select(*_EXPORTED).order_by(feedback.c.id)).all()
        for fid, session_id, turn, rating, comment, question, answer, citations, created_at in rows:
            yield {
                "id": fid, "session_id": session_id, "turn": turn, "rating": rating, "comment": comment,
                "question": question, "answer": answer, "citations": json.loads(citations), "created_at": created_at,
            }  # fmt: skip


_EXPORTED = [
    feedback.c[name]
    for name in ("id", "session_id", "turn", "rating", "comment", "question", "answer", "citations", "created_at")
]
