"""The services own their worker threads: closing them leaves no ``byline-*`` thread behind; background
work gives way to questions."""

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.api.app import create_app
from backend.core.types import SearchQuery
from backend.pools import InFlight
from backend.services import Services, build_checker
from backend.store.watches import WatchStore


def _byline_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("byline-")}


def test_closing_the_services_shuts_their_pools_and_ends_their_threads(services: Services) -> None:
    before = _byline_threads()  # other services of this test session may hold threads of their own
    services.retriever.retrieve(SearchQuery("who commands the sector?"))  # BM25 runs in the services' pool
    for pool in (services.pools.llm, services.pools.condense):
        pool.submit(time.sleep, 0).result()
    started = _byline_threads() - before
    assert {t.name.rsplit("_", 1)[0] for t in started} == {"byline-bm25", "byline-llm", "byline-condense"}
    services.close()
    for pool in (services.pools.lexical, services.pools.llm, services.pools.condense):
        with pytest.raises(RuntimeError):
            pool.submit(time.sleep, 0)
    deadline = time.monotonic() + 5
    while any(t.is_alive() for t in started) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [t.name for t in started if t.is_alive()]


def test_an_app_closes_the_services_it_was_given_to_close_when_it_stops(services: Services) -> None:
    with TestClient(create_app(services)) as client:
        assert client.get("/health").status_code == 200
    services.pools.lexical.submit(time.sleep, 0).result()  # an app shared services with: left open
    with TestClient(create_app(services, close_services=True)) as client:
        assert client.get("/health").status_code == 200
    with pytest.raises(RuntimeError):
        services.pools.lexical.submit(time.sleep, 0)


def test_the_saved_questions_threads_start_with_watching_and_end_with_the_services(services: Services) -> None:
    from backend.services import start_watching

    before = _byline_threads()
    watching = start_watching(services)
    started = _byline_threads() - before
    assert {t.name for t in started} == {"byline-watches", "byline-webhooks"}
    watching.close()
    assert not [t.name for t in started if t.is_alive()]


def test_background_work_waits_for_a_quiet_moment_after_the_questions() -> None:
    in_flight = InFlight(settle_s=0.05)
    assert in_flight.wait_quiet(max_wait_s=1.0)  # nothing asked yet
    returned = threading.Event()

    def background() -> None:
        if in_flight.wait_quiet(max_wait_s=30.0):
            returned.set()

    with in_flight.question():
        waiter = threading.Thread(target=background)
        waiter.start()
        assert not returned.wait(0.3)  # held back while the question is under way
        assert in_flight.count == 1
    waiter.join(10)
    assert returned.is_set() and in_flight.count == 0


def test_background_work_is_late_under_endless_questions_but_not_starved() -> None:
    in_flight = InFlight(settle_s=0.05)
    with in_flight.question():
        assert in_flight.wait_quiet(max_wait_s=0.1) is False


def test_the_checker_reads_only_when_no_question_is_under_way(demo_services: Services, tmp_path: Path) -> None:
    """A real check over the demo archive, with a question held open in another thread: the reading waits
    for its end."""
    services = replace(demo_services, watches=WatchStore(tmp_path / "watches.sqlite3"))
    events: list[str] = []
    reads: list[int] = []
    in_flight = services.pools.in_flight
    checker = build_checker(services)
    services.watches.create("k", "Who commands the Qaratapa-Hamrin sector?")
    done = threading.Event()

    def check() -> None:
        reads.append(checker.check(["demo-001"]).read)
        events.append(f"checked with {in_flight.count} questions under way")
        done.set()

    with in_flight.question():
        thread = threading.Thread(target=check)
        thread.start()
        assert not done.wait(1.0)
        events.append("question ended")
    thread.join(60)
    assert events == ["question ended", "checked with 0 questions under way"]
    assert reads == [1]  # the article was read, after the question
