"""Saved questions (watches), the articles waiting to be checked against them, their events and the
webhook deliveries those events owe, in one SQLite file (``settings.watches_db``) or the shared database
(``backend.store.db``).

The queue is durable: an ingest enqueues the ids of the articles it stored, and a checker takes them off only
once every watch has been checked against them, so a crash between the two loses nothing. A check claims
its batch for a lease (``claim``), renewed before each reading (``renew``), so two processes never check the
same articles at once and a claim left by a crashed one runs again when its lease ends. An event is unique
per watch and article: an article updated later never fires the same watch twice. Deliveries are a schedule
too: each failure moves the next attempt back (``retry_delay``), and a restart resumes where it stood; each
attempt claims its delivery for a lease that outlasts it (``due``).

Every API worker, and with a shared database every replica, runs a checker and a webhook sender on the same
tables: the claims are what keeps them apart. A claim is one conditional UPDATE (the rows still free, taken
and returned at once), so of two processes claiming together each row goes to one: on PostgreSQL the second
waits for the first's row locks, then finds the rows taken and leaves them. An article is checked twice only
where it was queued twice (stored twice), and then records no second event; a webhook is sent twice only
where an attempt outlives its lease, which covers its timeouts, and then carries the same event id.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from backend.core.dates import parse_datetime
from backend.core.errors import InvalidRequest, NotFound
from backend.core.types import Citation, Delivery, EventArticle, SearchFilters, ShortAnswer, Watch, WatchEvent
from backend.store.db import Database, opened
from backend.store.schema import deliveries, events, pending, watches

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


def _watch_columns() -> list[Any]:
    """A watch's row and its events' counts, as ``_watch_from_row`` reads them."""
    mine = events.c.watch_id == watches.c.id

    def about_events(what: Any, *where: Any) -> Any:
        return sa.select(what).where(mine, *where).correlate(watches).scalar_subquery()

    return [
        *(watches.c[name] for name in ("id", "owner", "question", "filters", "webhook_url", "webhook_secret")),
        watches.c.created_at,
        about_events(sa.func.count(), events.c.read == 0),
        about_events(sa.func.count()),
        about_events(sa.func.max(events.c.created_at)),
    ]


_WATCHES = sa.select(*_watch_columns())
_EVENT_COLUMNS = (events.c.id, events.c.watch_id, events.c.created_at, events.c.payload, events.c.read)


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


class WatchStore:
    def __init__(self, where: Path | Database, clock: Clock = time.time) -> None:
        """``where``: the SQLite file of the embedded default, or the shared database. ``clock``: seconds since
        the epoch, for the queue's leases and the deliveries' schedule (tests move it on instead of sleeping)."""
        self._db = opened(where, "watches")
        self._clock = clock
        # One writer of this process at a time; other processes wait on SQLite's lock or PostgreSQL's rows.
        self._lock = threading.Lock()

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
        row = sa.insert(watches).values(
            id=watch_id,
            owner=owner,
            question=question,
            filters=filters_to_json(filters or SearchFilters()),
            webhook_url=webhook_url,
            webhook_secret=secret,
            created_at=now,
        )
        with self._lock, self._db.begin() as db:
            count = db.execute(sa.select(sa.func.count()).where(watches.c.owner == owner)).scalar_one()
            if count >= max_per_owner:
                raise InvalidRequest(f"this key keeps {count} saved questions already, the most allowed; delete one")
            db.execute(row)
        return self.get(watch_id, owner)

    def get(self, watch_id: str, owner: str = "") -> Watch:
        with self._db.begin() as db:
            row = db.execute(_WATCHES.where(watches.c.id == watch_id, watches.c.owner == owner)).first()
        if row is None:
            raise _missing(watch_id)
        return _watch_from_row(row)

    def owned(self, owner: str = "") -> list[Watch]:
        """The owner's watches, newest first."""
        query = _WATCHES.where(watches.c.owner == owner).order_by(watches.c.created_at.desc(), watches.c.id)
        with self._db.begin() as db:
            rows = db.execute(query).all()
        return [_watch_from_row(r) for r in rows]

    def every(self) -> list[Watch]:
        """Every owner's watches, oldest first: what the checker checks."""
        with self._db.begin() as db:
            rows = db.execute(_WATCHES.order_by(watches.c.created_at, watches.c.id)).all()
        return [_watch_from_row(r) for r in rows]

    def count(self) -> int:
        with self._db.begin() as db:
            return int(db.execute(sa.select(sa.func.count()).select_from(watches)).scalar_one())

    def delete(self, watch_id: str, owner: str = "") -> None:
        """The watch with its events and any deliveries they still owed."""
        with self._lock, self._db.begin() as db:
            gone = db.execute(sa.delete(watches).where(watches.c.id == watch_id, watches.c.owner == owner))
            if gone.rowcount == 0:
                raise _missing(watch_id)

    def unread(self, owner: str = "") -> int:
        """Unread events over all the owner's watches (the chat's badge)."""
        query = (
            sa.select(sa.func.count())
            .select_from(events.join(watches, watches.c.id == events.c.watch_id))
            .where(watches.c.owner == owner, events.c.read == 0)
        )
        with self._db.begin() as db:
            return int(db.execute(query).scalar_one())

    # The queue of articles to check.

    def enqueue(self, article_ids: Sequence[str]) -> None:
        if not article_ids:
            return
        now = datetime.now(UTC).isoformat()
        with self._lock, self._db.begin() as db:
            db.execute(sa.insert(pending), [{"article_id": a, "queued_at": now} for a in article_ids])

    def pending(self) -> int:
        """Articles queued and not yet checked (claimed ones included)."""
        with self._db.begin() as db:
            return int(db.execute(sa.select(sa.func.count()).select_from(pending)).scalar_one())

    def claim(self, limit: int, lease_s: float = 600.0) -> list[tuple[int, str]]:
        """Up to ``limit`` queued articles, oldest first, as (ticket, article id), kept from other claims for
        ``lease_s``; ``done`` with the tickets takes them off the queue."""
        now = self._clock()
        free = pending.c.claimed_until <= now
        oldest = sa.select(pending.c.seq).where(free).order_by(pending.c.seq).limit(limit)
        # ``free`` again outside: on PostgreSQL a row another process claimed meanwhile is re-read after its
        # commit and then left to that claim, where the subquery alone would hand it out twice.
        claiming = (
            sa.update(pending)
            .where(pending.c.seq.in_(oldest.scalar_subquery()), free)
            .values(claimed_until=now + lease_s)
            .returning(pending.c.seq, pending.c.article_id)
        )
        with self._lock, self._db.begin() as db:
            rows = db.execute(claiming).all()
        return sorted((int(s), str(a)) for s, a in rows)

    def renew(self, tickets: Sequence[int], lease_s: float = 600.0) -> None:
        """Keep a claim while its check goes on: the tickets' lease runs ``lease_s`` from now, so a check longer
        than one lease (many saved questions, a slow language model) is not taken over by another process."""
        if not tickets:
            return
        keeping = (
            sa.update(pending).where(pending.c.seq.in_(list(tickets))).values(claimed_until=self._clock() + lease_s)
        )
        with self._lock, self._db.begin() as db:
            db.execute(keeping)

    def done(self, tickets: Sequence[int]) -> None:
        if not tickets:
            return
        with self._lock, self._db.begin() as db:
            db.execute(sa.delete(pending).where(pending.c.seq.in_(list(tickets))))

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
        row = self._db.insert(events).values(
            id=event.id,
            watch_id=watch.id,
            article_id=article.id,
            created_at=event.created_at.isoformat(),
            payload=json.dumps(event_payload(event)),
        )
        try:
            with self._lock, self._db.begin() as db:
                if db.execute(row.on_conflict_do_nothing().returning(events.c.id)).first() is None:  # not rowcount
                    return None
                if watch.webhook_url:
                    db.execute(sa.insert(deliveries).values(event_id=event.id, next_attempt_at=self._clock()))
        except exc.IntegrityError:  # the watch was deleted while it was being checked
            return None
        return event

    def events(
        self, watch_id: str, owner: str = "", *, limit: int = 50, offset: int = 0, unread_only: bool = False
    ) -> list[WatchEvent]:
        """The watch's events, newest first; ``NotFound`` where the owner has no such watch."""
        self.get(watch_id, owner)
        query = sa.select(*_EVENT_COLUMNS).where(events.c.watch_id == watch_id)
        if unread_only:
            query = query.where(events.c.read == 0)
        # Two events of one microsecond come in the order of their ids: neither backend keeps insertion order.
        query = query.order_by(events.c.created_at.desc(), events.c.id.desc()).limit(limit).offset(offset)
        with self._db.begin() as db:
            rows = db.execute(query).all()
        return [_event_from_row(*r) for r in rows]

    def event(self, event_id: str) -> WatchEvent | None:
        with self._db.begin() as db:
            row = db.execute(sa.select(*_EVENT_COLUMNS).where(events.c.id == event_id)).first()
        return None if row is None else _event_from_row(*row)

    def mark_read(self, watch_id: str, owner: str = "") -> int:
        """Every event of the watch read; how many were not."""
        self.get(watch_id, owner)
        reading = sa.update(events).where(events.c.watch_id == watch_id, events.c.read == 0).values(read=1)
        with self._lock, self._db.begin() as db:
            return db.execute(reading).rowcount

    # Webhook deliveries.

    def due(self, limit: int = 20, lease_s: float = 300.0) -> list[Delivery]:
        """Deliveries whose time has come, claimed for ``lease_s`` (their next attempt moved that far on, so a
        crash in the middle retries them then); ``delivered`` or ``failed`` settles each."""
        now = self._clock()
        ripe = deliveries.c.next_attempt_at.is_not(None) & (deliveries.c.next_attempt_at <= now)
        earliest = sa.select(deliveries.c.event_id).where(ripe).order_by(deliveries.c.next_attempt_at).limit(limit)
        claiming = (
            sa.update(deliveries)
            .where(deliveries.c.event_id.in_(earliest.scalar_subquery()), ripe)  # ``ripe`` again: as in ``claim``
            .values(next_attempt_at=now + lease_s)
            .returning(deliveries.c.event_id)
        )
        found = (
            sa.select(
                deliveries.c.event_id,
                events.c.watch_id,
                watches.c.webhook_url,
                watches.c.webhook_secret,
                deliveries.c.attempts,
                deliveries.c.last_error,
            )
            .select_from(
                deliveries.join(events, events.c.id == deliveries.c.event_id).join(
                    watches, watches.c.id == events.c.watch_id
                )
            )
            .order_by(deliveries.c.next_attempt_at, deliveries.c.event_id)
        )
        with self._lock, self._db.begin() as db:
            ids = [r[0] for r in db.execute(claiming)]
            if not ids:
                return []
            rows = db.execute(found.where(deliveries.c.event_id.in_(ids))).all()
        return [Delivery(e, w, u, s, int(a), err) for e, w, u, s, a, err in rows if u and s]

    def next_due(self) -> float | None:
        """When the earliest delivery falls due (seconds since the epoch), None when none is owed."""
        with self._db.begin() as db:
            found = db.execute(sa.select(sa.func.min(deliveries.c.next_attempt_at))).scalar()
        return None if found is None else float(found)

    def delivered(self, event_id: str) -> None:
        settled = (
            sa.update(deliveries)
            .where(deliveries.c.event_id == event_id)
            .values(
                attempts=deliveries.c.attempts + 1,
                next_attempt_at=None,
                delivered_at=datetime.now(UTC).isoformat(),
                last_error=None,
            )
        )
        with self._lock, self._db.begin() as db:
            db.execute(settled)

    def failed(self, event_id: str, error: str, *, attempts: int, backoff_s: float) -> float | None:
        """One more failed attempt: the next is scheduled by ``retry_delay``, or none after ``attempts`` (the
        delivery is given up, its last error kept). Returns the next attempt's time. A delivery another
        attempt delivered meanwhile stays delivered."""
        this = (deliveries.c.event_id == event_id) & deliveries.c.delivered_at.is_(None)
        with self._lock, self._db.begin() as db:
            row = db.execute(sa.select(deliveries.c.attempts).where(this)).first()
            if row is None:
                return None
            tried = int(row[0]) + 1
            next_at = None if tried >= attempts else self._clock() + retry_delay(tried, backoff_s)
            db.execute(
                sa.update(deliveries)
                .where(this)
                .values(attempts=tried, next_attempt_at=next_at, last_error=error[:500])
            )
        return next_at

    def delivery(self, event_id: str) -> tuple[int, float | None, str | None, str | None] | None:
        """(attempts, next attempt, last error, delivered at) of an event's delivery; None where none is owed."""
        query = sa.select(
            deliveries.c.attempts, deliveries.c.next_attempt_at, deliveries.c.last_error, deliveries.c.delivered_at
        ).where(deliveries.c.event_id == event_id)
        with self._db.begin() as db:
            row = db.execute(query).first()
        return None if row is None else (int(row[0]), row[1], row[2], row[3])
