"""The saved questions' checker on the demo archive, with the real model and reader: a new article that
answers a watch records one event citing it; one that does not, none; the same article again, none; a
watch's outlets are respected; and the pre-filter drops no event the reader would have recorded."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from backend.answering.watch import CheckReport, WatchRunner
from backend.core.types import SearchFilters
from backend.embedding import SentenceTransformerEmbedder
from backend.pools import InFlight
from backend.services import Services, build_checker, build_services
from backend.settings import Settings
from backend.store.db import Database, shared_database
from backend.store.watches import WatchStore
from ingest.pipeline import Ingestor
from tests.conftest import DEMO, QARATAPA_QUESTION
from tests.contracts.watch_store import Clock

COMMANDER = {
    "id": "watch-commander",
    "url": "https://northern-dispatch.example/2024/05/new-sector-commander",
    "title": "New commander for the Qaratapa-Hamrin sector",
    "published_at": "2024-05-07",
    "source": "Northern Dispatch",
    "text": "The Peshmerga ministry on Tuesday appointed Brigadier Aram Dizayi as commander of the Qaratapa-Hamrin "
    "sector.\n\nDizayi, who led a brigade near Kifri for six years, said joint patrols with the Iraqi army would "
    "continue. His predecessor retired last month.",
}
TRAM = {
    "id": "watch-tram",
    "url": "https://harbor-post.example/2024/05/tram-extension",
    "title": "Harbor City tram line extended to the airport",
    "published_at": "2024-05-08",
    "source": "Harbor Post",
    "text": "Harbor City's tram line now runs to the airport after a two-year extension, the transport authority said "
    "on Wednesday. The extension cost 80 million dollars.",
}


def _ingest(services: Services, tmp_path: Path, *records: dict[str, Any]) -> list[str]:
    path = tmp_path / f"batch-{records[0]['id']}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    settings = services.settings
    report = Ingestor(settings, services.embedder, services.store, services.registry, services.lexical).ingest([path])
    assert not report.errors, report.summary()
    return report.stored()


@pytest.fixture(scope="module")
def archive(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder
) -> Iterator[tuple[Services, Path]]:
    """The demo archive of its own (these tests add articles to it), and a folder for new ones."""
    root = tmp_path_factory.mktemp("watch")
    services = build_services(Settings(data_dir=root / "data"), embedder)
    report = Ingestor(services.settings, embedder, services.store, services.registry, services.lexical).ingest([DEMO])
    assert not report.errors
    yield services, root
    services.close()


@pytest.fixture
def services(archive: tuple[Services, Path], tmp_path: Path) -> Services:
    """The archive with a store of saved questions of this test's own."""
    return replace(archive[0], watches=WatchStore(tmp_path / "watches.sqlite3"))


def test_a_new_article_that_answers_records_one_event_citing_it(services: Services, tmp_path: Path) -> None:
    store = services.watches
    commander = store.create("k", QARATAPA_QUESTION)
    cup = store.create("k", "Who won the regional football cup final?")
    outlet = store.create("k", QARATAPA_QUESTION, SearchFilters(sources=("Valley Courier",)))
    named = store.create("k", QARATAPA_QUESTION, SearchFilters(sources=("northern dispatch",)))
    new = _ingest(services, tmp_path, COMMANDER, TRAM)
    assert sorted(new) == ["watch-commander", "watch-tram"]

    report = build_checker(services).check(new)
    assert report.watches == 4 and report.articles == 2
    assert sorted(e.watch_id for e in report.events) == sorted([commander.id, named.id])
    [event] = store.events(commander.id, "k")
    assert event.article.id == "watch-commander" and event.article.source == "Northern Dispatch"
    assert event.article.url == COMMANDER["url"] and event.article.published_at is not None
    assert event.short_answer is not None and "Aram Dizayi" in event.short_answer.text
    assert event.short_answer.confidence >= services.settings.answer.min_confidence
    cited = {c.n: c for c in event.citations}[event.short_answer.n]
    assert cited.article_id == "watch-commander" and "Aram Dizayi" in cited.snippet
    assert "Aram Dizayi" in event.answer
    assert store.events(cup.id, "k") == [] and store.events(outlet.id, "k") == []  # not answered; another outlet

    # The same article again, updated: checked again, and no second event.
    updated = {**COMMANDER, "text": COMMANDER["text"] + "\n\nDizayi takes up the post on Sunday."}
    assert _ingest(services, tmp_path, updated) == ["watch-commander"]
    assert build_checker(services).check(["watch-commander"]).events == []
    assert len(store.events(commander.id, "k")) == 1


def test_the_prefilter_drops_no_event_the_reader_would_record(services: Services, tmp_path: Path) -> None:
    """The same watches and articles, checked with and without the pre-filter, into two stores."""
    questions = [
        QARATAPA_QUESTION,
        "Who leads the Qaratapa-Hamrin sector now?",
        "Where does the Harbor City tram line run to?",
        "How much did the tram extension cost?",
        "Who won the regional football cup final?",
        "What is the central bank's key interest rate?",
    ]
    _ingest(services, tmp_path, COMMANDER, TRAM)  # stored now, whatever an earlier test stored
    new = [COMMANDER["id"], TRAM["id"]]
    found = []
    for prefilter in (True, False):
        store = WatchStore(tmp_path / f"prefilter-{prefilter}.sqlite3")
        for q in questions:
            store.create("k", q)
        checker = build_checker(replace(services, watches=store), prefilter=prefilter)
        report = checker.check(new)
        found.append(sorted((store.get(e.watch_id, "k").question, e.article.id) for e in report.events))
    with_prefilter, without = found
    assert with_prefilter == without
    assert (QARATAPA_QUESTION, "watch-commander") in with_prefilter
    assert ("How much did the tram extension cost?", "watch-tram") in with_prefilter


def test_the_runner_drains_the_queue_and_leaves_nothing_claimed(services: Services, tmp_path: Path) -> None:
    _ingest(services, tmp_path, COMMANDER)
    store = services.watches
    watch = store.create("k", QARATAPA_QUESTION)
    told = []
    runner = WatchRunner(build_checker(services), store, batch=1, on_events=told.append)
    store.enqueue(["watch-commander", "demo-013", "no-such-article"])
    seen = []
    report = runner.run_pending(lambda r, left: seen.append(left))
    assert seen == [2, 1, 0] and store.pending() == 0
    assert [e.article.id for e in report.events] == ["watch-commander"] and told == [report.events]
    assert len(store.events(watch.id, "k")) == 1


class SlowSteps(InFlight):
    """The checker's steps (its first look at the articles, then each reading), each ``step_s`` long on the
    stores' clock; before the third, ``meanwhile`` runs: the other replica's runner, finding the queue."""

    def __init__(self, clock: Clock, step_s: float) -> None:
        super().__init__()
        self.clock, self.step_s, self.steps = clock, step_s, 0
        self.meanwhile: Callable[[], object] | None = None

    def wait_quiet(self, max_wait_s: float = 30.0) -> bool:
        self.steps += 1
        self.clock.now += self.step_s
        if self.steps == 3 and self.meanwhile is not None:
            self.meanwhile()
        return True


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def test_two_replicas_never_check_the_same_article_even_past_a_lease(
    services: Services, tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    """Two runners on one queue (one SQLite file, or one PostgreSQL database), the first's check outlasting the
    600 s lease it claimed the article for: its claim is renewed before each step, so the second finds nothing."""
    clock = Clock()
    if backend == "sqlite":
        first, second = WatchStore(tmp_path / "w.sqlite3", clock), WatchStore(tmp_path / "w.sqlite3", clock)
    else:
        url = request.getfixturevalue("postgres_url")
        engine = sa.create_engine(url)  # the other replica's own
        request.addfinalizer(engine.dispose)
        first, second = WatchStore(shared_database(url), clock), WatchStore(Database(engine), clock)
    for question in (QARATAPA_QUESTION, "Who leads the Qaratapa-Hamrin sector now?", "Who heads the sector?"):
        first.create("k", question)
    _ingest(services, tmp_path, COMMANDER)
    first.enqueue([COMMANDER["id"]])
    slow = SlowSteps(clock, step_s=400.0)
    runner = WatchRunner(
        build_checker(replace(services, watches=first, pools=replace(services.pools, in_flight=slow))), first
    )
    other = WatchRunner(build_checker(replace(services, watches=second)), second)
    others: list[CheckReport] = []
    slow.meanwhile = lambda: others.append(other.run_pending())
    report = runner.run_pending()
    assert slow.steps >= 3 and clock.now - 1_000_000 >= 1200  # the other runner ran, two leases on
    assert [r.articles for r in others] == [0]  # ... and found nothing to check
    assert report.articles == 1 and report.read >= 2 and first.pending() == 0
