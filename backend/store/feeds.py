"""Followed sources (RSS/Atom feeds, news sitemaps), their health, and every item taken from them.

Kept in ``feeds.sqlite3`` in the data directory (or the shared database, ``backend.store.db``), so a restart
resumes where the poller was: each source's schedule, conditional-GET validators and failures, and the items
already stored. An item is known by its
canonical URL (its GUID where it has no link), whichever source listed it, so an entry that moves between
feeds, or comes back under a new GUID, is not taken twice. An item is recorded only once the archive has
stored its article: a poller killed before that takes it again, and the archive, which knows the article by
the same id, keeps it once.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from sqlalchemy import exc

from backend.core.errors import InvalidRequest, NotFound
from backend.settings import FollowSettings
from backend.store import schema
from backend.store.db import Database, opened

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


class FeedStore:
    def __init__(self, where: Path | Database) -> None:
        """``where``: the SQLite file of the embedded default, or the shared database."""
        self._db = opened(where, "feeds")
        self._lock = threading.Lock()

    # -- sources ---------------------------------------------------------------------------------------------

    def add(self, url: str, title: str | None = None, interval_s: float | None = None) -> Source:
        """Follow ``url`` (already checked and canonical), due at once; ``InvalidRequest`` if it is followed."""
        sid = source_id(url)
        row = sa.insert(schema.sources).values(
            id=sid, url=url, title=title, added_at=_now(), interval_s=interval_s, next_at=time.time()
        )
        try:
            with self._lock, self._db.begin() as db:
                db.execute(row)
        except exc.IntegrityError as error:
            raise InvalidRequest(f"{url} is followed already (source {sid})") from error
        return self.get(sid)

    def get(self, id_or_url: str) -> Source:
        with self._db.begin() as db:
            row = db.execute(
                _SELECT.where((schema.sources.c.id == id_or_url) | (schema.sources.c.url == id_or_url))
            ).first()
        if row is None:
            raise NotFound(f"no followed source with id or URL {id_or_url!r}")
        return Source(*row)

    def sources(self) -> list[Source]:
        with self._db.begin() as db:
            rows = db.execute(_SELECT.order_by(schema.sources.c.added_at, schema.sources.c.id)).all()
        return [Source(*row) for row in rows]

    def remove(self, id_or_url: str) -> Source:
        """Stop following; the articles it brought stay in the archive, and its items stay known."""
        source = self.get(id_or_url)
        with self._lock, self._db.begin() as db:
            db.execute(sa.delete(schema.sources).where(schema.sources.c.id == source.id))
        return source

    def due(self, now: float | None = None) -> list[Source]:
        now = time.time() if now is None else now
        with self._db.begin() as db:
            rows = db.execute(
                _SELECT.where(schema.sources.c.next_at <= now).order_by(schema.sources.c.next_at, schema.sources.c.id)
            ).all()
        return [Source(*row) for row in rows]

    def next_due(self) -> float | None:
        with self._db.begin() as db:
            found = db.execute(sa.select(sa.func.min(schema.sources.c.next_at))).scalar()
        return float(found) if found is not None else None

    def record(self, source: Source, polled: Polled, next_at: float) -> None:
        """A poll's outcome: health, validators (kept from before on an error), and when the source is due."""
        failed = polled.status == "error"
        values: dict[str, object] = {
            "next_at": next_at,
            "failures": schema.sources.c.failures + 1 if failed else 0,
            "last_fetch_at": _now(),
            "last_status": polled.status,
            "http_status": polled.http_status,
            "last_error": polled.error,
            "last_new": polled.new,
            "total_new": schema.sources.c.total_new + polled.new,
        }
        # What the poll did not learn is kept from before.
        for column, found in (("kind", polled.kind), ("feed_title", polled.title), ("ttl_s", polled.ttl_s)):
            if found is not None:
                values[column] = found
        if not (failed or polled.status == "not_modified"):
            values |= {"etag": polled.etag, "last_modified": polled.last_modified}
        with self._lock, self._db.begin() as db:
            db.execute(sa.update(schema.sources).where(schema.sources.c.id == source.id).values(values))

    # -- items -----------------------------------------------------------------------------------------------

    def unseen(self, keys: Sequence[str]) -> dict[str, int]:
        """Which of ``keys`` still need taking (never stored, and not given up), with the attempts made so far."""
        tried: dict[str, int] = {}
        with self._db.begin() as db:
            for start in range(0, len(keys), 500):
                part = list(keys[start : start + 500])
                query = sa.select(schema.items.c.key, schema.items.c.outcome, schema.items.c.attempts).where(
                    schema.items.c.key.in_(part)
                )
                for key, outcome, attempts in db.execute(query):
                    tried[key] = attempts if outcome == "retry" and attempts < MAX_ITEM_ATTEMPTS else -1
        return {key: tried.get(key, 0) for key in keys if tried.get(key, 0) >= 0}

    def taken(self, source_id: str, items: Iterable[tuple[str, str | None, str, str | None]]) -> None:
        """Record items as taken: (key, article id, outcome, detail). Outcome ``retry`` counts an attempt;
        after ``MAX_ITEM_ATTEMPTS`` of them the item is given up."""
        now = _now()
        rows = [
            {"key": key, "source_id": source_id, "article_id": article_id, "outcome": outcome, "detail": detail,
             "seen_at": now}
            for key, article_id, outcome, detail in items
        ]  # fmt: skip
        if not rows:
            return
        row = self._db.insert(schema.items)
        upsert = row.on_conflict_do_update(
            index_elements=[schema.items.c.key],
            set_={
                "article_id": row.excluded.article_id,
                "outcome": row.excluded.outcome,
                "detail": row.excluded.detail,
                "seen_at": row.excluded.seen_at,
                "attempts": sa.case(
                    (row.excluded.outcome == "retry", schema.items.c.attempts + 1), else_=schema.items.c.attempts
                ),
            },
        )
        with self._lock, self._db.begin() as db:
            for one in rows:  # one at a time: a key listed twice in a batch counts twice, as it always has
                db.execute(upsert, one)

    def items(self, source_id: str | None = None) -> list[tuple[str, str | None, str, int, str | None]]:
        """(key, article id, outcome, attempts, detail) of every item, oldest first (tests and diagnostics)."""
        query = sa.select(
            schema.items.c.key,
            schema.items.c.article_id,
            schema.items.c.outcome,
            schema.items.c.attempts,
            schema.items.c.detail,
        )
        if source_id is not None:
            query = query.where(schema.items.c.source_id == source_id)
        with self._db.begin() as db:
            return [
                (key, article, outcome, attempts, detail)
                for key, article, outcome, attempts, detail in db.execute(
                    query.order_by(schema.items.c.seen_at, schema.items.c.key)
                )
            ]


_SELECT = sa.select(*(schema.sources.c[name] for name in Source.__dataclass_fields__))
