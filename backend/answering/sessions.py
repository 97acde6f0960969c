"""Conversation turns in SQLite, so a follow-up works across requests and server restarts."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from backend.core.dates import parse_datetime
from backend.core.types import Citation, Turn
from backend.store import sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
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
"""


def new_session_id() -> str:
    return uuid.uuid4().hex


class SessionStore(sqlite.SqliteStore):
    schema = _SCHEMA

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._lock = threading.Lock()

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

    def append(self, session_id: str, turn: Turn) -> None:
        now = datetime.now(UTC).isoformat()
        with self._lock, self._connect() as db:
            db.execute(
                "INSERT INTO sessions (id, created_at, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET updated_at = excluded.updated_at",
                (session_id, now, now),
            )
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
        )
        for item in json.loads(raw)
    )
