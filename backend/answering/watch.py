"""Saved questions checked against new articles only: the checker, and the thread that runs it in a server.

After an ingest batch every watch is compared with the new articles' chunks alone, by the vectors already
stored for them (no search over the archive): the chunks its filters let through are ranked by cosine
similarity to the question, the best ``k`` numbered as ``/ask`` numbers its sources, and the answer generator
``/ask`` uses reads them. An event is recorded where the answer's short answer is sure (confidence at least
``answer.min_confidence``, the threshold of ``short_answer.sure``), for the article that short answer cites.

A cheap pre-filter runs first: a watch none of whose content terms (``backend.core.text.content_terms``, the
BM25 index's terms) occurs in a new article's chunks does not read that article. The benchmark
(``bench/watches.py``) and the tests count the events with and without it.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from backend.answering.chain import number_sources, renumber_short, verify_citations
from backend.core.filters import matches
from backend.core.protocols import AnswerGenerator, Embedder, VectorStore
from backend.core.text import content_terms
from backend.core.types import Chunk, EventArticle, Hit, SearchQuery, Watch, WatchEvent
from backend.pools import InFlight
from backend.retrieval.reading import QueryReader
from backend.store.watches import WatchStore

log = logging.getLogger("byline.watches")


@dataclass(slots=True)
class CheckReport:
    """What one check did: how many watches and articles, how many answers were read, the events."""

    articles: int = 0
    watches: int = 0
    read: int = 0  # answers generated (watches that passed the pre-filter)
    skipped: int = 0  # watches the pre-filter spared the reader
    events: list[WatchEvent] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, other: CheckReport) -> None:
        self.articles += other.articles
        self.watches = max(self.watches, other.watches)
        self.read += other.read
        self.skipped += other.skipped
        self.events += other.events
        self.seconds += other.seconds

    def line(self) -> str:
        return (
            f"saved questions: {self.watches} checked against {self.articles} new articles,"
            f" {self.read} answers read, {len(self.events)} events ({self.seconds:.1f}s)"
        )


class WatchChecker:
    def __init__(
        self,
        watches: WatchStore,
        store: VectorStore,
        embedder: Embedder,
        generator: AnswerGenerator,
        *,
        k: int,
        max_sources: int,
        min_confidence: float,
        reader: QueryReader | None = None,
        prefilter: bool = True,
        in_flight: InFlight | None = None,
    ) -> None:
        """``generator``: built as ``/ask``'s is (``backend.services.build_generator``), on the plain embedder, so
        the checker's model calls run in its own thread, never a batch a question waits in. ``reader``: reads
        the outlets a question names ("What does Reuters say ..."), which filter its articles as in ``/ask``."""
        self._watches = watches
        self._store = store
        self._embedder = embedder
        self._generator = generator
        self._k = k
        self._max_sources = max_sources
        self._min_confidence = min_confidence
        self._reader = reader
        self._prefilter = prefilter
        # Before each reading the checker waits for a moment with no question under way: it never competes
        # with a question for the cores (``InFlight``).
        self._in_flight = in_flight
        self._vectors: dict[str, np.ndarray] = {}  # question -> its unit vector, kept while the process runs

    def check(
        self,
        article_ids: Sequence[str],
        watches: Sequence[Watch] | None = None,
        *,
        renew: Callable[[], None] | None = None,
    ) -> CheckReport:
        """Check every watch (or ``watches``) against these articles; records and returns the events.
        ``renew``: called before each step (the runner keeps its claim of the articles while they are read)."""
        started = time.perf_counter()
        watches = self._watches.every() if watches is None else watches
        report = CheckReport(articles=len(set(article_ids)), watches=len(watches))
        if not watches or not article_ids:
            return report
        self._quiet(renew)
        found = self._store.chunks_with_vectors(article_ids)
        if found:
            chunks = [c for c, _ in found]
            matrix = _unit(np.asarray([v for _, v in found], dtype=np.float32))
            terms = [frozenset(content_terms(f"{c.title} {c.text}")) for c in chunks]
            for watch in watches:
                self._check_one(watch, chunks, matrix, terms, report, renew)
        report.seconds = time.perf_counter() - started
        return report

    def _quiet(self, renew: Callable[[], None] | None) -> None:
        """Before a step: a moment with no question under way, then the claim renewed (after the wait, which
        ``InFlight`` bounds, so the lease covers the step itself)."""
        if self._in_flight is not None:
            self._in_flight.wait_quiet()
        if renew is not None:
            renew()

    def _question_vector(self, question: str) -> np.ndarray:
        vector = self._vectors.get(question)
        if vector is None:
            vector = _unit(np.asarray([self._embedder.embed_query(question)], dtype=np.float32))[0]
            self._vectors[question] = vector
        return vector

    def _check_one(
        self,
        watch: Watch,
        chunks: list[Chunk],
        matrix: np.ndarray,
        terms: list[frozenset[str]],
        report: CheckReport,
        renew: Callable[[], None] | None = None,
    ) -> None:
        filters = watch.filters
        if self._reader is not None and not filters.sources:
            named = self._reader.read(watch.question, None).sources
            filters = replace(filters, sources=named) if named else filters
        query = SearchQuery(watch.question, filters=filters)
        wanted = frozenset(content_terms(watch.question))
        keep = [
            i
            for i, c in enumerate(chunks)
            if matches(c.published_at, c.source, query) and (not self._prefilter or wanted & terms[i])
        ]
        if not keep:
            report.skipped += 1
            return
        scores = matrix[keep] @ self._question_vector(watch.question)
        order = np.argsort(-scores, kind="stable")[: self._k]
        hits = [Hit(chunks[keep[int(i)]], float(scores[int(i)])) for i in order]
        sources = number_sources(hits, self._max_sources)
        self._quiet(renew)
        draft = self._generator.generate(watch.question, sources)
        report.read += 1
        text, citations = verify_citations(draft, sources)
        short = renumber_short(draft.short_answer, sources, citations)
        if short is None or short.confidence < self._min_confidence:
            return
        cited = next(c for c in citations if c.n == short.n)
        article = EventArticle(cited.article_id, cited.title, cited.url, cited.source, cited.published_at)
        event = self._watches.record(watch, article, text, citations, short)
        if event is not None:
            report.events.append(event)


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


Progress = Callable[[CheckReport, int], None]  # the report so far, and the articles still queued


class WatchRunner:
    """Drains the durable queue through the checker: in a thread of the server (``start``), or at once for a
    command line (``run_pending``). The thread runs at a lower OS priority than the requests, and never inside
    one: a request only enqueues (``notify``).

    Every worker and replica of a server runs one, on the same queue: each batch is claimed, and the claim
    renewed before each reading, so no two runners check the same queued article (``WatchStore``)."""

    def __init__(
        self,
        checker: WatchChecker,
        watches: WatchStore,
        *,
        batch: int = 50,
        lease_s: float = 600.0,
        on_events: Callable[[list[WatchEvent]], None] | None = None,
    ) -> None:
        """``on_events``: told of each batch's new events (the webhook sender wakes up)."""
        self._checker = checker
        self._watches = watches
        self._batch = batch
        self._lease_s = lease_s
        self._on_events = on_events
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def notify(self, article_ids: Sequence[str]) -> None:
        """The ingest's listener (``PipelineWriter``'s ``on_stored``): queue the articles, wake the thread."""
        self._watches.enqueue(article_ids)
        self._wake.set()

    def run_pending(self, progress: Progress | None = None) -> CheckReport:
        """Check every queued article in batches until the queue is empty (or the runner is stopped)."""
        total = CheckReport()
        while not self._stopping.is_set():
            taken = self._watches.claim(self._batch, self._lease_s)
            if not taken:
                break
            watches = self._watches.every()
            tickets = [t for t, _ in taken]
            report = None
            if watches:
                articles = list(dict.fromkeys(a for _, a in taken))
                renew = functools.partial(self._watches.renew, tickets, self._lease_s)
                report = self._checker.check(articles, watches, renew=renew)
            self._watches.done(tickets)
            if report is None:
                continue  # no watches: the articles are taken off the queue unread
            total.add(report)
            if report.events and self._on_events is not None:
                self._on_events(report.events)
            if progress is not None:
                progress(total, self._watches.pending())
        return total

    def start(self) -> WatchRunner:
        self._thread = threading.Thread(target=self._loop, name="byline-watches", daemon=True)
        self._thread.start()
        self._wake.set()  # what a crash or a command line left in the queue
        return self

    def _loop(self) -> None:
        lower_priority()
        while not self._stopping.is_set():
            self._wake.wait(timeout=60.0)  # also picks up claims whose lease ran out
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                report = self.run_pending()
                if report.events:
                    log.info("%s", report.line())
            except Exception:  # the queue keeps the articles; the next wake tries again
                log.exception("checking the saved questions failed")
                self._stopping.wait(5.0)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)


def lower_priority(niceness: int = 10) -> None:
    """This thread at a lower OS priority (Linux schedules threads one by one), so questions come first."""
    if hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
        except OSError:  # not permitted here: run at the normal priority
            log.debug("could not lower the priority of %s", threading.current_thread().name)
