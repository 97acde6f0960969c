"""Conversation turns in SQLite or PostgreSQL (``backend.store.db``), so a follow-up works across requests,
server restarts and replicas.

Each conversation belongs to the API key that started it (its digest; "" on a server without keys):
another key can neither list, read, continue, delete nor rate it, and is told it does not exist.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from backend.core.dates import parse_datetime
from backend.core.errors import NotFound
from backend.core.types import Citation, Turn
from backend.core.types import SessionSummary as SessionSummary
from backend.store.db import Database, opened
from backend.store.schema import sessions, turns


def new_session_id() -> str:
    return uuid.uuid4().hex


class SessionStore:
    def __init__(self, where: Path | Database, max_age_days: float = 0.0) -> None:
        """``where``: the SQLite file of the embedded default, or the shared database."""
        self._db = opened(where, "sessions")
        self._lock = threading.Lock()
        self._max_age_days = max_age_days
        self.expire()

    def expire(self) -> int:
        """Delete conversations untouched for longer than the configured age; how many went."""
        if not self._max_age_days:
            return 0
        cutoff = (datetime.now(UTC) - timedelta(days=self._max_age_days)).isoformat()
        with self._lock, self._db.begin() as db:
            return db.execute(sa.delete(sessions).where(sessions.c.updated_at < cutoff)).rowcount

    def summaries(self, limit: int = 50, offset: int = 0, owner: str = "") -> list[SessionSummary]:
        """The owner's conversations, most recently active first."""
        earliest = turns.alias("earliest")
        first = (
            sa.select(earliest.c.question)
            .where(earliest.c.session_id == sessions.c.id)
            .order_by(earliest.c.position)
            .limit(1)
            .correlate(sessions)
            .scalar_subquery()
        )
        query = (
            sa.select(
                sessions.c.id, sessions.c.created_at, sessions.c.updated_at, sa.func.count(turns.c.position), first
            )
            .select_from(sessions.outerjoin(turns, turns.c.session_id == sessions.c.id))
            .where(sessions.c.owner == owner)
            .group_by(sessions.c.id)
            .order_by(sessions.c.updated_at.desc(), sessions.c.id)
            .limit(limit)
            .offset(offset)
        )
        with self._db.begin() as db:
            rows = db.execute(query).all()
        return [
            SessionSummary(i, datetime.fromisoformat(c), datetime.fromisoformat(u), int(n), q or "")
            for i, c, u, n, q in rows
        ]

    def turns(self, session_id: str, owner: str = "") -> list[Turn]:
        """Every turn of a conversation in order; NotFound when the owner has no such conversation."""
        with self._db.begin() as db:
            if db.execute(sa.select(sessions.c.id).where(*_owned(session_id, owner))).first() is None:
                raise _missing(session_id)
        return self.history(session_id, limit=1_000_000)

    def delete(self, session_id: str, owner: str = "") -> None:
        with self._lock, self._db.begin() as db:
            if db.execute(sa.delete(sessions).where(*_owned(session_id, owner))).rowcount == 0:
                raise _missing(session_id)

    def check(self, session_id: str, owner: str = "") -> None:
        """Whether the owner may continue this conversation: a new id may be, another key's may not (NotFound)."""
        with self._db.begin() as db:
            row = db.execute(sa.select(sessions.c.owner).where(sessions.c.id == session_id)).first()
        if row is not None and row[0] != owner:
            raise _missing(session_id)

    def history(self, session_id: str, limit: int) -> list[Turn]:
        if limit <= 0:
            return []
        query = (
            sa.select(turns.c.question, turns.c.rewritten_query, turns.c.answer, turns.c.citations)
            .where(turns.c.session_id == session_id)
            .order_by(turns.c.position.desc())
            .limit(limit)
        )
        with self._db.begin() as db:
            rows = db.execute(query).all()
        return [
            Turn(question=q, rewritten_query=r, answer=a, citations=_citations_from_json(c))
            for q, r, a, c in reversed(rows)
        ]

    def append(self, session_id: str, turn: Turn, owner: str = "") -> None:
        self.expire()
        now = datetime.now(UTC).isoformat()
        started = self._db.insert(sessions).values(id=session_id, created_at=now, updated_at=now, owner=owner)
        # On PostgreSQL the upsert also locks the conversation's row until commit, so two replicas appending to
        # one conversation number their turns one after the other.
        touched = started.on_conflict_do_update(
            index_elements=[sessions.c.id],
            set_={"updated_at": started.excluded.updated_at},
            where=sessions.c.owner == started.excluded.owner,
        )
        with self._lock, self._db.begin() as db:
            # RETURNING, not rowcount: an INSERT's rowcount is not reported on every driver (psycopg's is -1).
            if db.execute(touched.returning(sessions.c.id)).first() is None:  # another key's (taken since check())
                raise _missing(session_id)
            position = db.execute(
                sa.select(sa.func.coalesce(sa.func.max(turns.c.position), -1) + 1).where(
                    turns.c.session_id == session_id
                )
            ).scalar_one()
            db.execute(
                sa.insert(turns).values(
                    session_id=session_id,
                    position=position,
                    question=turn.question,
                    rewritten_query=turn.rewritten_query,
                    answer=turn.answer,
                    citations=_citations_to_json(turn.citations),
                    created_at=now,
                )
            )


def _owned(session_id: str, owner: str) -> tuple[sa.ColumnElement[bool], ...]:
    return sessions.c.id == session_id, sessions.c.owner == owner


def _missing(session_id: str) -> NotFound:
    return NotFound(f"no conversation with id {session_id!r}")


def _citations_to_json(citations: tuple[Citation, ...]) -> str:
    return json.dumps(
        [
            {
                "n": c.n,
                "article_id": c.article_id,
                "url": c.url,
                "title": c.title,
                "source": c.source,
                "published_at": c.published_at.isoformat() if c.published_at else None,
                "snippet": c.snippet,
                "also_in": list(c.also_in),
            }
            for c in citations
        ]
    )


def _citations_from_json(raw: str) -> tuple[Citation, ...]:
    return tuple(
        Citation(
            n=int(item["n"]),
            article_id=item["article_id"],
            url=item["url"],
            title=item["title"],
            source=item["source"],
            published_at=parse_datetime(item["published_at"]),
            snippet=item["snippet"],
            also_in=tuple(item.get("also_in", ())),  # absent in turns stored before it existed
        )
        for item in json.loads(raw)
    )
