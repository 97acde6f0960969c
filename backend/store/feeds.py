"""Followed sources (RSS/Atom feeds, news sitemaps), their health, and every item taken from them.

Kept in ``feeds.sqlite3`` in the data directory, so a restart resumes where the poller was: each source's
schedule, conditional-GET validators and failures, and the items already stored. An item is known by its
canonical URL (its GUID where it has no link), whichever source listed it, so an entry that moves between
feeds, or comes back under a new GUID, is not taken twice. An item is recorded only once the archive has
stored its article: a poller killed before that takes it again, and the archive, which knows the article by
the same id, keeps it once.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from backend.core.errors import InvalidRequest, NotFound
from backend.core.net import canonical_url as canonical_url
from backend.settings import FollowSettings
from backend.store import sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    title TEXT,
    feed_title TEXT,
    kind TEXT,
    added_at TEXT NOT NULL,
    interval_s REAL,
    ttl_s REAL,
    etag TEXT,
    last_modified TEXT,
    next_at REAL NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    last_fetch_at TEXT,
    last_status TEXT NOT NULL DEFAULT 'pending',
    http_status INTEGER,
    last_error TEXT,
    last_new INTEGER NOT NULL DEFAULT 0,
    total_new INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS items (
    key TEXT PRIMARY KEY,
    source_id TEXT NOT NULL,
    article_id TEXT,
    outcome TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    detail TEXT,
    seen_at TEXT NOT NULL
);
"""

Status = Literal["pending", "ok", "not_modified", "error"]
# An item that failed this many times (its page would not load, say) is given up, and says why.
MAX_ITEM_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    url: str
    title: str | None  # the outlet's name the source was given
    feed_title: str | None  # the feed's own title, once polled
    kind: str | None
    added_at: str
    interval_s: float | None  # None: the settings' interval
    ttl_s: float | None  # what the feed itself asks for
    etag: str | None
    last_modified: str | None
    next_at: float  # when it is due, seconds since the epoch
    failures: int  # in a row
    last_fetch_at: str | None
    last_status: Status
    http_status: int | None
    last_error: str | None
    last_new: int  # articles the last poll stored
    total_new: int


@dataclass(frozen=True, slots=True)
class Polled:
    """What one poll of a source found, for its health."""

    status: Status
    http_status: int | None = None
    error: str | None = None
    new: int = 0
    kind: str | None = None
    title: str | None = None
    ttl_s: float | None = None
    etag: str | None = None
    last_modified: str | None = None


def effective_interval_s(source: Source, settings: FollowSettings) -> float:
    """The source's own interval (else the settings'), shortened to the feed's ``ttl``, never under the floor."""
    every = source.interval_s or settings.interval_s
    if source.ttl_s:
        every = min(every, source.ttl_s)
    return max(every, settings.min_interval_s)


def source_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:12]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class FeedStore(sqlite.SqliteStore):
    schema = _SCHEMA

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._lock = threading.Lock()

    # -- sources ---------------------------------------------------------------------------------------------

    def add(self, url: str, title: str | None = None, interval_s: float | None = None) -> Source:
        """Follow ``url`` (already checked and canonical), due at once; ``InvalidRequest`` if it is followed."""
        sid = source_id(url)
        try:
            with self._lock, self._connect() as db:
                db.execute(
                    "INSERT INTO sources (id, url, title, added_at, interval_s, next_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (sid, url, title, _now(), interval_s, time.time()),
                )
        except sqlite3.IntegrityError as exc:
            raise InvalidRequest(f"{url} is followed already (source {sid})") from exc
        return self.get(sid)

    def get(self, id_or_url: str) -> Source:
        with self._connect() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM sources WHERE id = ? OR url = ?", (id_or_url, id_or_url)
            ).fetchone()
        if row is None:
            raise NotFound(f"no followed source with id or URL {id_or_url!r}")
        return Source(*row)

    def sources(self) -> list[Source]:
        with self._connect() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM sources ORDER BY added_at, id").fetchall()
        return [Source(*row) for row in rows]

    def remove(self, id_or_url: str) -> Source:
        """Stop following; the articles it brought stay in the archive, and its items stay known."""
        source = self.get(id_or_url)
        with self._lock, self._connect() as db:
            db.execute("DELETE FROM sources WHERE id = ?", (source.id,))
        return source

    def due(self, now: float | None = None) -> list[Source]:
        now = time.time() if now is None else now
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM sources WHERE next_at <= ? ORDER BY next_at, id", (now,)
            ).fetchall()
        return [Source(*row) for row in rows]

    def next_due(self) -> float | None:
        with self._connect() as db:
            (found,) = db.execute("SELECT MIN(next_at) FROM sources").fetchone()
        return float(found) if found is not None else None

    def record(self, source: Source, polled: Polled, next_at: float) -> None:
        """A poll's outcome: health, validators (kept from before on an error), and when the source is due."""
        failed = polled.status == "error"
        with self._lock, self._connect() as db:
            db.execute(
                "UPDATE sources SET kind = COALESCE(?, kind), feed_title = COALESCE(?, feed_title),"
                " ttl_s = COALESCE(?, ttl_s),"
                " etag = CASE WHEN ? THEN etag ELSE ? END, last_modified = CASE WHEN ? THEN last_modified ELSE ? END,"
                " next_at = ?, failures = CASE WHEN ? THEN failures + 1 ELSE 0 END, last_fetch_at = ?,"
                " last_status = ?, http_status = ?, last_error = ?, last_new = ?, total_new = total_new + ?"
                " WHERE id = ?",
                (
                    polled.kind,
                    polled.title,
                    polled.ttl_s,
                    failed or polled.status == "not_modified",
                    polled.etag,
                    failed or polled.status == "not_modified",
                    polled.last_modified,
                    next_at,
                    failed,
                    _now(),
                    polled.status,
                    polled.http_status,
                    polled.error,
                    polled.new,
                    polled.new,
                    source.id,
                ),
            )

    def forget_validators(self, source_id: str) -> None:
        """Drop the ETag and Last-Modified, so the next poll reads the whole feed (after a failed write)."""
        with self._lock, self._connect() as db:
            db.execute("UPDATE sources SET etag = NULL, last_modified = NULL WHERE id = ?", (source_id,))

    # -- items -----------------------------------------------------------------------------------------------

    def unseen(self, keys: Sequence[str]) -> dict[str, int]:
        """Which of ``keys`` still need taking (never stored, and not given up), with the attempts made so far."""
        tried: dict[str, int] = {}
        with self._connect() as db:
            for start in range(0, len(keys), 500):
                part = list(keys[start : start + 500])
                marks = ",".join("?" * len(part))
                for key, outcome, attempts in db.execute(
                    f"SELECT key, outcome, attempts FROM items WHERE key IN ({marks})", part
                ):
                    tried[key] = attempts if outcome == "retry" and attempts < MAX_ITEM_ATTEMPTS else -1
        return {key: tried.get(key, 0) for key in keys if tried.get(key, 0) >= 0}

    def taken(self, source_id: str, items: Iterable[tuple[str, str | None, str, str | None]]) -> None:
        """Record items as taken: (key, article id, outcome, detail). Outcome ``retry`` counts an attempt;
        after ``MAX_ITEM_ATTEMPTS`` of them the item is given up."""
        now = _now()
        with self._lock, self._connect() as db:
            for key, article_id, outcome, detail in items:
                db.execute(
                    "INSERT INTO items (key, source_id, article_id, outcome, detail, seen_at) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT(key) DO UPDATE SET article_id = excluded.article_id, outcome = excluded.outcome,"
                    " detail = excluded.detail, seen_at = excluded.seen_at,"
                    " attempts = CASE WHEN excluded.outcome = 'retry' THEN items.attempts + 1 ELSE items.attempts END",
                    (key, source_id, article_id, outcome, detail, now),
                )

    def items(self, source_id: str | None = None) -> list[tuple[str, str | None, str, int, str | None]]:
        """(key, article id, outcome, attempts, detail) of every item, oldest first (tests and diagnostics)."""
        query = "SELECT key, article_id, outcome, attempts, detail FROM items"
        args: tuple[str, ...] = ()
        if source_id is not None:
            query, args = query + " WHERE source_id = ?", (source_id,)
        with self._connect() as db:
            return [tuple(row) for row in db.execute(query + " ORDER BY seen_at, key", args)]


_COLUMNS = ", ".join(Source.__dataclass_fields__)
