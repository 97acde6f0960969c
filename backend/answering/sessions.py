"""Conversation turns in SQLite, so a follow-up works across requests and server restarts.

Each conversation belongs to the API key that started it (its digest; "" on a server without keys):
another key can neither list, read, continue, delete nor rate it, and is told it does not exist.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from backend.core.dates import parse_datetime
from backend.core.errors import NotFound
from backend.core.types import Citation, Turn
from backend.core.types import SessionSummary as SessionSummary
from backend.store import sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS turns (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    question TEXT NOT NULL,
    rewritten_query TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (session_id, position)
);
CREATE INDEX IF NOT EXISTS sessions_updated ON sessions(updated_at);
"""
# After the upgrade below: a file written before owners has no owner column for the index yet.
_OWNER_INDEX = "CREATE INDEX IF NOT EXISTS sessions_owner ON sessions(owner, updated_at)"


def new_session_id() -> str:
    return uuid.uuid4().hex


class SessionStore(sqlite.SqliteStore):
    schema = _SCHEMA

    def __init__(self, path: Path, max_age_days: float = 0.0) -> None:
        super().__init__(path)
        self._lock = threading.Lock()
        self._max_age_days = max_age_days
        with self._connect() as db:
            if "owner" not in {r[1] for r in db.execute("PRAGMA table_info(sessions)")}:
                # Conversations kept before owners existed belong to no key: only a server without keys shows them.
                db.execute("ALTER TABLE sessions ADD COLUMN owner TEXT NOT NULL DEFAULT ''")
            db.execute(_OWNER_INDEX)
        self.expire()

    def expire(self) -> int:
        """Delete conversations untouched for longer than the configured age; how many went."""
        if not self._max_age_days:
            return 0
        cutoff = (datetime.now(UTC) - timedelta(days=self._max_age_days)).isoformat()
        with self._lock, self._connect() as db:
            return db.execute("DELETE FROM sessions WHERE updated_at < ?", (cutoff,)).rowcount

    def summaries(self, limit: int = 50, offset: int = 0, owner: str = "") -> list[SessionSummary]:
        """The owner's conversations, most recently active first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT s.id, s.created_at, s.updated_at, COUNT(t.position),"
                " (SELECT question FROM turns WHERE session_id = s.id ORDER BY position LIMIT 1)"
                " FROM sessions s LEFT JOIN turns t ON t.session_id = s.id WHERE s.owner = ?"
                " GROUP BY s.id ORDER BY s.updated_at DESC, s.id LIMIT ? OFFSET ?",
                (owner, limit, offset),
            ).fetchall()
        return [
            SessionSummary(i, datetime.fromisoformat(c), datetime.fromisoformat(u), int(n), q or "")
            for i, c, u, n, q in rows
        ]

    def turns(self, session_id: str, owner: str = "") -> list[Turn]:
        """Every turn of a conversation in order; NotFound when the owner has no such conversation."""
        with self._connect() as db:
            if db.execute("SELECT 1 FROM sessions WHERE id = ? AND owner = ?", (session_id, owner)).fetchone() is None:
                raise _missing(session_id)
        return self.history(session_id, limit=1_000_000)

    def delete(self, session_id: str, owner: str = "") -> None:
        with self._lock, self._connect() as db:
            if db.execute("DELETE FROM sessions WHERE id = ? AND owner = ?", (session_id, owner)).rowcount == 0:
                raise _missing(session_id)

    def check(self, session_id: str, owner: str = "") -> None:
        """Whether the owner may continue this conversation: a new id may be, another key's may not (NotFound)."""
        with self._connect() as db:
            row = db.execute("SELECT owner FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is not None and row[0] != owner:
            raise _missing(session_id)

    def history(self, session_id: str, limit: int) -> list[Turn]:
        if limit <= 0:
            return []
        with self._connect() as db:
            rows = db.execute(
                "SELECT question, rewritten_query, answer, citations FROM turns"
                " WHERE session_id = ? ORDER BY position DESC LIMIT ?",
                (session_id, limit),
            ).fetchall()
        return [
            Turn(question=q, rewritten_query=r, answer=a, citations=_citations_from_json(c))
            for q, r, a, c in reversed(rows)
        ]

    def append(self, session_id: str, turn: Turn, owner: str = "") -> None:
        self.expire()
        now = datetime.now(UTC).isoformat()
        with self._lock, self._connect() as db:
            written = db.execute(
                "INSERT INTO sessions (id, created_at, updated_at, owner) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET updated_at = excluded.updated_at WHERE owner = excluded.owner",
                (session_id, now, now, owner),
            ).rowcount
            if not written:  # another key's conversation (taken since check())
                raise _missing(session_id)
            (position,) = db.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 FROM turns WHERE session_id = ?", (session_id,)
            ).fetchone()
            db.execute(
                "INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    session_id,
                    position,
                    turn.question,
                    turn.rewritten_query,
                    turn.answer,
                    _citations_to_json(turn.citations),
                    now,
                ),
            )


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
