"""Saved questions (watches), the articles waiting to be checked against them, their events and the
webhook deliveries those events owe, in one SQLite file (``settings.watches_db``).

The queue is durable: an ingest enqueues the ids of the articles it stored, and a checker takes them off only
once every watch has been checked against them, so a crash between the two loses nothing. A check claims
its batch for a lease (``claim``), so two processes (API workers) never check the same articles at once and
a claim left by a crashed one runs again when its lease ends. An event is unique per watch and article: an
article updated later never fires the same watch twice. Deliveries are a schedule too: each failure moves
the next attempt back (``retry_delay``), and a restart resumes where it stood.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from backend.core.dates import parse_datetime
from backend.core.errors import InvalidRequest, NotFound
from backend.core.types import Citation, Delivery, EventArticle, SearchFilters, ShortAnswer, Watch, WatchEvent
from backend.store.sqlite import SqliteStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS watches (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    question TEXT NOT NULL,
    filters TEXT NOT NULL,
    webhook_url TEXT,
    webhook_secret TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS watches_owner ON watches(owner, created_at);
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    claimed_until REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    watch_id TEXT NOT NULL REFERENCES watches(id) ON DELETE CASCADE,
    article_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    payload TEXT NOT NULL,
    read INTEGER NOT NULL DEFAULT 0,
    UNIQUE (watch_id, article_id)
);
CREATE INDEX IF NOT EXISTS events_watch ON events(watch_id, created_at);
CREATE TABLE IF NOT EXISTS deliveries (
    event_id TEXT PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    last_error TEXT,
    delivered_at TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(next_attempt_at);
"""

Clock = Callable[[], float]


def retry_delay(attempts: int, backoff_s: float) -> float:
    """Seconds before the next delivery after ``attempts`` failed ones: ``backoff_s``, doubled for each
    failure after the first (30 s, 60 s, 120 s ... by default)."""
    return float(backoff_s * 2 ** max(attempts - 1, 0))


def filters_to_json(filters: SearchFilters) -> str:
    return json.dumps(
        {
            "sources": list(filters.sources),
            "published_after": filters.published_after.isoformat() if filters.published_after else None,
            "published_before": filters.published_before.isoformat() if filters.published_before else None,
        }
    )


def filters_from_json(raw: str) -> SearchFilters:
    data = json.loads(raw)
    after, before = data.get("published_after"), data.get("published_before")
    return SearchFilters(
        sources=tuple(data.get("sources") or ()),
        published_after=date.fromisoformat(after) if after else None,
        published_before=date.fromisoformat(before) if before else None,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def event_payload(event: WatchEvent) -> dict[str, Any]:
    """The event as JSON: what is stored, what ``GET /watches/{id}/events`` shows and a webhook receives."""
    short = event.short_answer
    a = event.article
    return {
        "id": event.id,
        "watch_id": event.watch_id,
        "created_at": event.created_at.isoformat(),
        "article": {
            "id": a.id,
            "title": a.title,
            "url": a.url,
            "source": a.source,
            "published_at": _iso(a.published_at),
        },
        "answer": {
            "text": event.answer,
            "short_answer": None
            if short is None
            else {"text": short.text, "n": short.n, "confidence": short.confidence, "outlets": list(short.outlets)},
            "citations": [
                {
                    "n": c.n,
                    "article_id": c.article_id,
                    "url": c.url,
                    "title": c.title,
                    "source": c.source,
                    "published_at": _iso(c.published_at),
                    "snippet": c.snippet,
                    "also_in": list(c.also_in),
                }
                for c in event.citations
            ],
        },
    }


def _event_from_row(event_id: str, watch_id: str, created_at: str, payload: str, read: int) -> WatchEvent:
    data = json.loads(payload)
    a, answer = data["article"], data["answer"]
    short = answer.get("short_answer")
    return WatchEvent(
        id=event_id,
        watch_id=watch_id,
        article=EventArticle(a["id"], a["title"], a["url"], a["source"], parse_datetime(a["published_at"])),
        answer=answer["text"],
        citations=tuple(
            Citation(
                n=int(c["n"]),
                article_id=c["article_id"],
                url=c["url"],
                title=c["title"],
                source=c["source"],
                published_at=parse_datetime(c["published_at"]),
                snippet=c["snippet"],
                also_in=tuple(c.get("also_in", ())),
            )
            for c in answer["citations"]
        ),
        short_answer=None
        if short is None
        else ShortAnswer(short["text"], int(short["n"]), float(short["confidence"]), tuple(short["outlets"])),
        created_at=datetime.fromisoformat(created_at),
        read=bool(read),
    )


_WATCH_COLUMNS = (
    "w.id, w.owner, w.question, w.filters, w.webhook_url, w.webhook_secret, w.created_at,"
    " (SELECT COUNT(*) FROM events e WHERE e.watch_id = w.id AND e.read = 0),"
    " (SELECT COUNT(*) FROM events e WHERE e.watch_id = w.id),"
    " (SELECT MAX(created_at) FROM events e WHERE e.watch_id = w.id)"
)


def _watch_from_row(row: Sequence[Any]) -> Watch:
    i, owner, question, filters, url, secret, created, unread, events, last = row
    return Watch(
        id=i,
        owner=owner,
        question=question,
        filters=filters_from_json(filters),
        created_at=datetime.fromisoformat(created),
        webhook_url=url,
        webhook_secret=secret,
        unread=int(unread),
        events=int(events),
        last_event_at=datetime.fromisoformat(last) if last else None,
    )


def _missing(watch_id: str) -> NotFound:
    return NotFound(f"no saved question with id {watch_id!r}")


class WatchStore(SqliteStore):
    schema = _SCHEMA

    def __init__(self, path: Path, clock: Clock = time.time) -> None:
        """``clock``: seconds since the epoch, for the queue's leases and the deliveries' schedule (tests
        move it on instead of sleeping)."""
        super().__init__(path)
        self._clock = clock
        self._lock = threading.Lock()  # one writer of this process at a time; other processes wait on SQLite

    # The watches, each seen only by its owner.

    def create(
        self,
        owner: str,
        question: str,
        filters: SearchFilters | None = None,
        webhook_url: str | None = None,
        *,
        max_per_owner: int = 100,
    ) -> Watch:
        """A new watch; with ``webhook_url``, a new secret to sign its deliveries with. ``InvalidRequest``
        when the owner already keeps ``max_per_owner``."""
        watch_id = uuid.uuid4().hex
        secret = secrets.token_hex(32) if webhook_url else None
        now = datetime.now(UTC).isoformat()
        with self._lock, self._connect() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM watches WHERE owner = ?", (owner,)).fetchone()
            if count >= max_per_owner:
                raise InvalidRequest(f"this key keeps {count} saved questions already, the most allowed; delete one")
            db.execute(
                "INSERT INTO watches VALUES (?, ?, ?, ?, ?, ?, ?)",
                (watch_id, owner, question, filters_to_json(filters or SearchFilters()), webhook_url, secret, now),
            )
        return self.get(watch_id, owner)

    def get(self, watch_id: str, owner: str = "") -> Watch:
        with self._connect() as db:
            row = db.execute(
                f"SELECT {_WATCH_COLUMNS} FROM watches w WHERE w.id = ? AND w.owner = ?", (watch_id, owner)
            ).fetchone()
        if row is None:
            raise _missing(watch_id)
        return _watch_from_row(row)

    def owned(self, owner: str = "") -> list[Watch]:
        """The owner's watches, newest first."""
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {_WATCH_COLUMNS} FROM watches w WHERE w.owner = ? ORDER BY w.created_at DESC, w.id", (owner,)
            ).fetchall()
        return [_watch_from_row(r) for r in rows]

    def every(self) -> list[Watch]:
        """Every owner's watches, oldest first: what the checker checks."""
        with self._connect() as db:
            rows = db.execute(f"SELECT {_WATCH_COLUMNS} FROM watches w ORDER BY w.created_at, w.id").fetchall()
        return [_watch_from_row(r) for r in rows]

    def count(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM watches").fetchone()[0])

    def delete(self, watch_id: str, owner: str = "") -> None:
        """The watch with its events and any deliveries they still owed."""
        with self._lock, self._connect() as db:
            if db.execute("DELETE FROM watches WHERE id = ? AND owner = ?", (watch_id, owner)).rowcount == 0:
                raise _missing(watch_id)

    def unread(self, owner: str = "") -> int:
        """Unread events over all the owner's watches (the chat's badge)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM events e JOIN watches w ON w.id = e.watch_id WHERE w.owner = ? AND e.read = 0",
                (owner,),
            ).fetchone()
        return int(row[0])

    # The queue of articles to check.

    def enqueue(self, article_ids: Sequence[str]) -> None:
        if not article_ids:
            return
        now = datetime.now(UTC).isoformat()
        with self._lock, self._connect() as db:
            db.executemany("INSERT INTO pending (article_id, queued_at) VALUES (?, ?)", [(a, now) for a in article_ids])

    def pending(self) -> int:
        """Articles queued and not yet checked (claimed ones included)."""
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM pending").fetchone()[0])

    def claim(self, limit: int, lease_s: float = 600.0) -> list[tuple[int, str]]:
        """Up to ``limit`` queued articles, oldest first, as (ticket, article id), kept from other claims for
        ``lease_s``; ``done`` with the tickets takes them off the queue."""
        now = self._clock()
        with self._lock, self._connect() as db:
            rows = db.execute(
                "UPDATE pending SET claimed_until = ? WHERE seq IN"
                " (SELECT seq FROM pending WHERE claimed_until <= ? ORDER BY seq LIMIT ?) RETURNING seq, article_id",
                (now + lease_s, now, limit),
            ).fetchall()
        return sorted((int(s), str(a)) for s, a in rows)

    def done(self, tickets: Sequence[int]) -> None:
        with self._lock, self._connect() as db:
            db.executemany("DELETE FROM pending WHERE seq = ?", [(t,) for t in tickets])

    # Events.

    def record(
        self,
        watch: Watch,
        article: EventArticle,
        answer: str,
        citations: Sequence[Citation],
        short_answer: ShortAnswer | None,
    ) -> WatchEvent | None:
        """The event of ``article`` answering ``watch``, with a delivery due now where the watch has a
        webhook; None when this watch already has an event of this article (or the watch is gone)."""
        event = WatchEvent(
            id=uuid.uuid4().hex,
            watch_id=watch.id,
            article=article,
            answer=answer,
            citations=tuple(citations),
            short_answer=short_answer,
            created_at=datetime.now(UTC),
        )
        with self._lock, self._connect() as db:
            try:
                written = db.execute(
                    "INSERT OR IGNORE INTO events (id, watch_id, article_id, created_at, payload)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (event.id, watch.id, article.id, event.created_at.isoformat(), json.dumps(event_payload(event))),
                ).rowcount
            except sqlite3.IntegrityError:  # deleted while it was being checked
                return None
            if not written:
                return None
            if watch.webhook_url:
                due = (event.id, self._clock())
                db.execute("INSERT INTO deliveries (event_id, next_attempt_at) VALUES (?, ?)", due)
        return event

    def events(
        self, watch_id: str, owner: str = "", *, limit: int = 50, offset: int = 0, unread_only: bool = False
    ) -> list[WatchEvent]:
        """The watch's events, newest first; ``NotFound`` where the owner has no such watch."""
        self.get(watch_id, owner)
        unread = " AND read = 0" if unread_only else ""
        with self._connect() as db:
            rows = db.execute(
                f"SELECT id, watch_id, created_at, payload, read FROM events WHERE watch_id = ?{unread}"
                " ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                (watch_id, limit, offset),
            ).fetchall()
        return [_event_from_row(*r) for r in rows]

    def event(self, event_id: str) -> WatchEvent | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT id, watch_id, created_at, payload, read FROM events WHERE id = ?", (event_id,)
            ).fetchone()
        return None if row is None else _event_from_row(*row)

    def mark_read(self, watch_id: str, owner: str = "") -> int:
        """Every event of the watch read; how many were not."""
        self.get(watch_id, owner)
        with self._lock, self._connect() as db:
            return db.execute("UPDATE events SET read = 1 WHERE watch_id = ? AND read = 0", (watch_id,)).rowcount

    # Webhook deliveries.

    def due(self, limit: int = 20, lease_s: float = 300.0) -> list[Delivery]:
        """Deliveries whose time has come, claimed for ``lease_s`` (their next attempt moved that far on, so a
        crash in the middle retries them then); ``delivered`` or ``failed`` settles each."""
        now = self._clock()
        with self._lock, self._connect() as db:
            rows = db.execute(
                "UPDATE deliveries SET next_attempt_at = ? WHERE event_id IN (SELECT event_id FROM deliveries"
                " WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?)"
                " RETURNING event_id",
                (now + lease_s, now, limit),
            ).fetchall()
            if not rows:
                return []
            ids = [r[0] for r in rows]
            marks = ",".join("?" * len(ids))
            found = db.execute(
                "SELECT d.event_id, e.watch_id, w.webhook_url, w.webhook_secret, d.attempts, d.last_error"
                " FROM deliveries d JOIN events e ON e.id = d.event_id JOIN watches w ON w.id = e.watch_id"
                f" WHERE d.event_id IN ({marks}) ORDER BY d.next_attempt_at, d.event_id",
                ids,
            ).fetchall()
        return [Delivery(e, w, u, s, int(a), err) for e, w, u, s, a, err in found if u and s]

    def next_due(self) -> float | None:
        """When the earliest delivery falls due (seconds since the epoch), None when none is owed."""
        with self._connect() as db:
            row = db.execute("SELECT MIN(next_attempt_at) FROM deliveries").fetchone()
        return None if row[0] is None else float(row[0])

    def delivered(self, event_id: str) -> None:
        with self._lock, self._connect() as db:
            db.execute(
                "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = NULL, delivered_at = ?,"
                " last_error = NULL WHERE event_id = ?",
                (datetime.now(UTC).isoformat(), event_id),
            )

    def failed(self, event_id: str, error: str, *, attempts: int, backoff_s: float) -> float | None:
        """One more failed attempt: the next is scheduled by ``retry_delay``, or none after ``attempts`` (the
        delivery is given up, its last error kept). Returns the next attempt's time."""
        with self._lock, self._connect() as db:
            row = db.execute("SELECT attempts FROM deliveries WHERE event_id = ?", (event_id,)).fetchone()
            if row is None:
                return None
            tried = int(row[0]) + 1
            next_at = None if tried >= attempts else self._clock() + retry_delay(tried, backoff_s)
            db.execute(
                "UPDATE deliveries SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE event_id = ?",
                (tried, next_at, error[:500], event_id),
            )
        return next_at

    def delivery(self, event_id: str) -> tuple[int, float | None, str | None, str | None] | None:
        """(attempts, next attempt, last error, delivered at) of an event's delivery; None where none is owed."""
        with self._connect() as db:
            row = db.execute(
                "SELECT attempts, next_attempt_at, last_error, delivered_at FROM deliveries WHERE event_id = ?",
                (event_id,),
            ).fetchone()
        return None if row is None else (int(row[0]), row[1], row[2], row[3])
