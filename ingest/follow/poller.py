"""The poller: each followed source fetched when due, its new items stored through the archive's writer.

One poller per archive (``follow_lock``): inside ``byline serve`` (a thread, ``byline-follow``) or alone
as ``byline follow``. Every server process runs the thread (``keep_following``): the one that holds the lock
polls, the others stand by and one of them takes over when it stops. A poll of a source:

1. fetches it with its validators (ETag, Last-Modified); a 304 ends the poll;
2. parses the feed or sitemap (a sitemap index's sitemaps too);
3. keeps the entries not taken before (by canonical URL, whichever source listed them), at most
   ``follow.max_entries``;
4. fetches the page of each entry that carries only a summary, and extracts its text (trafilatura);
5. stores the articles through the writer, the same path as ``POST /articles``: cleaned, deduplicated,
   clustered, chunked, embedded; the saved questions are told;
6. records the items taken, then the source's health and when it is next due.

The items are recorded after the writer has stored them, and the validators only when nothing of the
poll is left to take: a poller killed anywhere takes the same entries again, and the archive, which
knows each article by an id made from its URL, stores it once. Nothing a source does stops the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backend.core.errors import Busy, BylineError
from backend.core.protocols import ArchiveWriter
from backend.pools import InFlight
from backend.settings import FollowSettings, Settings
from backend.store.feeds import MAX_ITEM_ATTEMPTS, FeedStore, Polled, Source, effective_interval_s
from ingest.follow.fetch import Fetcher, FetchError, RobotsDenied
from ingest.follow.parse import Entry, Parsed, ParseError, page_record, parse_source
from ingest.lock import FOLLOW_KEY, HeldLock, try_lock

log = logging.getLogger(__name__)
FOLLOW_LOCK = ".follow.lock"
# A sitemap index names many sitemaps; the last ones listed are read (sites list them oldest first).
_MAX_CHILD_SITEMAPS = 5
# Entries read, then sent to the writer, per step: a poll of many entries stores them as it goes.
_WRITE_BATCH = 16
# A source whose writes were refused (another writer holds the archive) is tried again this soon.
_BUSY_RETRY_S = 60.0
# A process standing by tries the follow lock this often: it takes over within this long of the poller stopping.
_STANDBY_S = 30.0


class FollowerBusy(BylineError):
    status = 409
    title = "Archive followed already"


def follow_lock(settings: Settings) -> HeldLock | None:
    """The archive's one poller, held until released: ``FOLLOW_LOCK`` in the data directory, or with a shared
    database its advisory lock (``ingest.lock.FOLLOW_KEY``), so one process polls for every replica; None when
    another process holds it."""
    return try_lock(settings, FOLLOW_LOCK, FOLLOW_KEY)


def delay_s(source: Source, polled: Polled, settings: FollowSettings, retry_after_s: float | None) -> float:
    """When to poll again: the interval; after failures, twice as long for each failure in a row after the
    first, up to ``max_backoff_s``; never sooner than a ``Retry-After`` asks."""
    every = effective_interval_s(source, settings)
    if polled.status == "error":
        every = min(every * 2 ** min(source.failures, 30), max(settings.max_backoff_s, every))
    return max(every, retry_after_s or 0.0)


@dataclass
class _Taking:
    """The entries of one poll on their way to the archive."""

    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (item key, record)
    marks: list[tuple[str, str | None, str, str | None]] = field(default_factory=list)  # FeedStore.taken rows
    left: int = 0  # entries left for a later poll (retries, beyond max_entries)
    new: int = 0


class Poller:
    def __init__(
        self,
        settings: FollowSettings,
        feeds: FeedStore,
        writer: ArchiveWriter,
        fetcher: Fetcher | None = None,
        *,
        clock: Callable[[], float] = time.time,
        in_flight: InFlight | None = None,
    ) -> None:
        """``in_flight``: the server's questions under way; each batch waits for a quiet moment before it is
        embedded, so that polling does not compete with a question for the cores."""
        self._in_flight = in_flight
        self._settings = settings
        self._feeds = feeds
        self._writer = writer
        self._fetcher = fetcher or Fetcher(settings)
        self._clock = clock

    def close(self) -> None:
        self._fetcher.close()

    def run(self, stop: threading.Event, lock: HeldLock | None = None) -> None:
        """Poll what is due until ``stop`` is set; a source added meanwhile is polled within a few seconds.
        ``lock``: the follow lock this process holds; ``FollowerBusy`` once it is lost, checked before each
        source."""
        while not stop.is_set():
            self.poll_due(stop, lock)
            upcoming = self._feeds.next_due()
            wait = 5.0 if upcoming is None else min(max(upcoming - self._clock(), 0.2), 5.0)
            stop.wait(wait)

    def poll_due(
        self, stop: threading.Event | None = None, lock: HeldLock | None = None
    ) -> list[tuple[Source, Polled]]:
        """Poll every source that is due, once each; what each poll found."""
        done = []
        for source in self._feeds.due(self._clock()):
            if stop is not None and stop.is_set():
                break
            if lock is not None and not lock.held():
                raise FollowerBusy(
                    f"the lock of the followed sources on {lock.where} was lost; this process stops polling"
                )
            done.append((source, self.poll(source)))
        return done

    def poll(self, source: Source) -> Polled:
        """Poll one source and record its health; never raises for what a source does."""
        retry_after: float | None = None
        try:
            polled = self._poll(source)
        except FetchError as exc:
            retry_after = exc.retry_after_s
            polled = Polled("error", http_status=exc.status, error=str(exc))
        except ParseError as exc:
            polled = Polled("error", error=f"not a feed or sitemap: {exc}")
        except Busy as exc:
            retry_after = _BUSY_RETRY_S
            polled = Polled("error", error=f"the archive did not take the articles: {exc}")
        except Exception as exc:  # a bug or a store failure: this source waits, the others go on
            log.exception("polling %s failed", source.url)
            polled = Polled("error", error=f"internal error: {type(exc).__name__}: {exc}")
        self._feeds.record(source, polled, self._clock() + delay_s(source, polled, self._settings, retry_after))
        if polled.status == "error":
            log.warning("source %s: %s", source.url, polled.error)
        elif polled.new:
            log.info("source %s: %d new articles", source.url, polled.new)
        return polled

    def _poll(self, source: Source) -> Polled:
        fetched = self._fetcher.get(
            source.url, max_bytes=self._settings.max_feed_bytes, etag=source.etag, last_modified=source.last_modified
        )
        if fetched.status == 304:
            return Polled("not_modified", http_status=304)
        parsed = parse_source(fetched.body, fetched.url)
        entries, child_errors = self._entries(parsed)
        taking = self._take(source, parsed, entries)
        complete = not taking.left and not child_errors
        return Polled(
            "error" if child_errors and not entries else "ok",
            http_status=fetched.status,
            error="; ".join(child_errors) or None,
            new=taking.new,
            kind=parsed.kind,
            title=parsed.title,
            ttl_s=parsed.ttl_s,
            # Kept only when the whole poll was taken: else the next poll would get a 304 and never see the rest.
            etag=fetched.etag if complete else None,
            last_modified=fetched.last_modified if complete else None,
        )

    def _entries(self, parsed: Parsed) -> tuple[list[Entry], list[str]]:
        """The entries of a feed or sitemap; for a sitemap index, of its last few sitemaps."""
        if parsed.kind != "sitemap_index":
            return list(parsed.entries), []
        entries: list[Entry] = []
        errors: list[str] = []
        for url in parsed.sitemaps[-_MAX_CHILD_SITEMAPS:]:
            try:
                child = parse_source(self._fetcher.get(url, max_bytes=self._settings.max_feed_bytes).body, url)
            except (FetchError, ParseError) as exc:
                errors.append(f"{url}: {exc}")
                continue
            entries.extend(child.entries)
        return entries, errors

    def _take(self, source: Source, parsed: Parsed, entries: list[Entry]) -> _Taking:
        keyed: dict[str, Entry] = {}
        for entry in entries:
            key = entry.url or (f"guid:{entry.guid}" if entry.guid else None)
            if key is not None:
                keyed.setdefault(key, entry)
        unseen = self._feeds.unseen(list(keyed))
        todo = [(key, entry) for key, entry in keyed.items() if key in unseen]
        taking = _Taking(left=max(len(todo) - self._settings.max_entries, 0))
        todo = todo[: self._settings.max_entries]
        for start in range(0, len(todo), _WRITE_BATCH):
            for key, entry in todo[start : start + _WRITE_BATCH]:
                last_try = unseen[key] + 1 >= MAX_ITEM_ATTEMPTS
                self._record(source, parsed, key, entry, taking, last_try)
            self._write(source, taking)
        return taking

    def _write(self, source: Source, taking: _Taking) -> None:
        """Store the records gathered so far, then record them taken (with the entries that needed no write):
        batch by batch, so a poller killed later takes only the rest again."""
        if taking.records:
            if self._in_flight is not None:
                self._in_flight.wait_quiet()
            outcomes = self._writer.add([record for _, record in taking.records], origin=source.url)
            for (key, _), outcome in zip(taking.records, outcomes, strict=True):
                taking.marks.append((key, outcome.id, outcome.status, outcome.detail or None))
                taking.new += outcome.status == "new"
        self._feeds.taken(source.id, taking.marks)
        taking.records, taking.marks = [], []

    def _record(self, source: Source, parsed: Parsed, key: str, entry: Entry, taking: _Taking, last_try: bool) -> None:
        """The entry as a record for the writer, its page fetched when the feed gave only a summary."""
        record: dict[str, Any] = {
            "url": entry.url,
            "title": entry.title,
            "text": entry.text,
            "published_at": entry.published,
            "authors": list(entry.authors),
            # The outlet: a news sitemap names it; else the name the source was given, else the page's site,
            # else the feed's title.
            "source": entry.outlet or source.title,
            "guid": entry.guid,
            "feed": source.url,
        }
        if entry.summary_only and entry.url:
            try:
                fetched = self._fetcher.get(entry.url, max_bytes=self._settings.max_page_bytes)
                page = page_record(fetched.body, fetched.url)
                if page is None:
                    raise ParseError("no article text found in the page")
            except RobotsDenied as exc:
                page, problem = None, f"page not fetched: {exc}"
                last_try = True  # robots.txt will say the same next time
            except (FetchError, ParseError) as exc:
                page, problem = None, f"page not read: {exc}"
            if page is None:
                if not last_try:
                    taking.marks.append((key, None, "retry", problem))
                    taking.left += 1
                    return
                if not entry.text.strip():
                    taking.marks.append((key, None, "failed", f"{problem}; the entry has no summary either"))
                    return
                record["summary_only"] = True  # kept with what the feed said, after the page failed
            else:
                record["text"] = page["text"]
                for name in ("title", "published_at", "authors"):
                    if not record.get(name) and page.get(name):
                        record[name] = page[name]
                record["source"] = record["source"] or page.get("source")
        record["source"] = record["source"] or parsed.title
        if not str(record.get("text") or "").strip():
            taking.marks.append((key, None, "failed", "the entry has no text"))
            return
        taking.records.append((key, {name: value for name, value in record.items() if value not in (None, "", [])}))


def keep_following(poller: Poller, settings: Settings, stop: threading.Event, standby_s: float = _STANDBY_S) -> None:
    """Poll while this process holds the archive's follow lock, and stand by while another one does, trying
    again every ``standby_s``, until ``stop``: what every server process runs, so that when the poller stops
    (its server shut down, killed, or its database session ended) another takes over.

    A poller that loses its lock (PostgreSQL restarted, its connection cut: the session that held it is gone,
    and another process may hold it now) stops before its next source rather than poll beside that one, and
    stands by like the others; taking the lock back at once would only race them. At most the source it was
    polling is polled twice, which stores nothing twice (an article's id is made from its URL)."""
    said = False
    while not stop.is_set():
        try:
            held = follow_lock(settings)
        except Exception:  # the database does not answer: stand by until it does
            log.exception("could not take the lock of the followed sources")
            held = None
        if held is None:
            if not said:
                log.info("another process polls the followed sources of this archive; this one stands by")
                said = True
            stop.wait(standby_s)
            continue
        said = False
        try:
            poller.run(stop, held)
        except FollowerBusy as exc:
            log.warning("%s", exc)
        except Exception:  # the feed store failed (a database outage): let another process try
            log.exception("polling the followed sources stopped")
        finally:
            held.release()
        stop.wait(standby_s)
