"""The saved questions' store: owners, events once per article, a queue that survives a crash, the
deliveries' schedule."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from backend.core.errors import InvalidRequest, NotFound
from backend.core.types import Citation, EventArticle, SearchFilters, ShortAnswer, Watch
from backend.store.watches import WatchStore, retry_delay


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


OUTLET, URL = "Northern Dispatch", "https://e.org/1"
ARTICLE = EventArticle("new-1", "A new commander", URL, OUTLET, datetime(2024, 5, 1, tzinfo=UTC))
CITATION = Citation(1, "new-1", URL, "A new commander", OUTLET, None, "Aram Dizayi commands.")
SHORT = ShortAnswer("Aram Dizayi", 1, 0.8, ("Northern Dispatch",))


def _record(store: WatchStore, watch: Watch, article: EventArticle = ARTICLE) -> object:
    return store.record(watch, article, "Aram Dizayi [1].", [CITATION], SHORT)


def test_watches_belong_to_their_owner(tmp_path: Path) -> None:
    store = WatchStore(tmp_path / "w.sqlite3")
    filters = SearchFilters(sources=("Reuters",), published_after=date(2024, 1, 1))
    mine = store.create("key-a", "Who commands the sector?", filters)
    other = store.create("key-b", "Who won the cup?")
    assert mine.webhook_secret is None and mine.filters == filters
    assert [w.id for w in store.owned("key-a")] == [mine.id] and store.get(mine.id, "key-a") == mine
    for call in (store.get, store.delete, store.mark_read, store.events):
        with pytest.raises(NotFound):
            call(mine.id, "key-b")
    assert {w.id for w in store.every()} == {mine.id, other.id}
    store.delete(mine.id, "key-a")
    assert store.owned("key-a") == [] and store.count() == 1


def test_an_owner_keeps_at_most_the_configured_number(tmp_path: Path) -> None:
    store = WatchStore(tmp_path / "w.sqlite3")
    for n in range(3):
        store.create("k", f"question {n}", max_per_owner=3)
    with pytest.raises(InvalidRequest):
        store.create("k", "one too many", max_per_owner=3)
    store.create("other", "another key's first", max_per_owner=3)


def test_an_article_fires_a_watch_once_and_events_come_back_whole(tmp_path: Path) -> None:
    store = WatchStore(tmp_path / "w.sqlite3")
    watch = store.create("k", "Who commands the sector?")
    event = _record(store, watch)
    assert event is not None and _record(store, watch) is None  # updated later: no second event
    [back] = store.events(watch.id, "k")
    assert back == event
    second = store.record(watch, EventArticle("new-2", "t", None, None, None), "Someone [1].", [], None)
    assert second is not None
    assert [e.id for e in store.events(watch.id, "k")] == [second.id, back.id]  # newest first
    assert store.get(watch.id, "k").unread == 2 and store.unread("k") == 2 and store.unread("other") == 0
    assert store.mark_read(watch.id, "k") == 2
    assert store.unread("k") == 0 and store.events(watch.id, "k", unread_only=True) == []
    assert store.get(watch.id, "k").events == 2 and store.get(watch.id, "k").last_event_at == second.created_at
    store.delete(watch.id, "k")
    assert store.event(back.id) is None  # the events go with their watch


def test_the_queue_survives_a_crash_and_a_claim_runs_again_after_its_lease(tmp_path: Path) -> None:
    path, clock = tmp_path / "w.sqlite3", Clock()
    store = WatchStore(path, clock)
    store.enqueue(["a", "b", "c"])
    first = store.claim(2, lease_s=60)
    assert [a for _, a in first] == ["a", "b"]
    assert [a for _, a in store.claim(10, lease_s=60)] == ["c"]  # a second checker takes the rest
    # The process dies before ``done``: another opens the file, and finds the claims once their lease ends.
    again = WatchStore(path, clock)
    assert again.pending() == 3 and again.claim(10) == []
    clock.now += 61
    retaken = again.claim(10)
    assert [a for _, a in retaken] == ["a", "b", "c"]
    again.done([t for t, _ in retaken])
    assert again.pending() == 0 and again.claim(10) == []


def test_an_article_stored_again_while_checked_is_checked_again(tmp_path: Path) -> None:
    store = WatchStore(tmp_path / "w.sqlite3")
    store.enqueue(["a"])
    taken = store.claim(10)
    store.enqueue(["a"])  # updated while its first version was being checked
    store.done([t for t, _ in taken])
    assert [a for _, a in store.claim(10)] == ["a"]


def test_deliveries_back_off_double_each_time_then_give_up(tmp_path: Path) -> None:
    assert [retry_delay(n, 30.0) for n in (1, 2, 3, 4)] == [30.0, 60.0, 120.0, 240.0]
    path, clock = tmp_path / "w.sqlite3", Clock()
    store = WatchStore(path, clock)
    hooked = store.create("k", "q", webhook_url="https://hooks.example/byline")
    assert hooked.webhook_secret and len(hooked.webhook_secret) == 64
    plain = store.create("k", "q2")
    event = store.record(hooked, ARTICLE, "a", [], None)
    assert event is not None and store.record(plain, ARTICLE, "a", [], None) is not None
    [due] = store.due(lease_s=100)
    assert (due.event_id, due.url, due.secret, due.attempts) == (event.id, hooked.webhook_url, hooked.webhook_secret, 0)
    assert store.due() == []  # claimed
    schedule = []
    for _ in range(3):
        next_at = store.failed(event.id, "HTTP 500", attempts=4, backoff_s=30.0)
        assert next_at is not None
        schedule.append(next_at - clock.now)
        clock.now = next_at
        # A restart finds the schedule where it stood.
        [again] = WatchStore(path, clock).due()
        assert again.attempts == len(schedule) and again.last_error == "HTTP 500"
    assert schedule == [30.0, 60.0, 120.0]
    assert store.failed(event.id, "timed out", attempts=4, backoff_s=30.0) is None  # the fourth: given up
    clock.now += 10_000
    assert store.due() == [] and store.delivery(event.id) == (4, None, "timed out", None)
    assert store.next_due() is None


def test_a_delivery_succeeds_once(tmp_path: Path) -> None:
    store = WatchStore(tmp_path / "w.sqlite3", Clock())
    watch = store.create("k", "q", webhook_url="https://hooks.example/byline")
    event = store.record(watch, ARTICLE, "a", [], None)
    assert event is not None and store.next_due() is not None
    [due] = store.due()
    store.delivered(due.event_id)
    attempts, next_at, error, delivered_at = store.delivery(event.id) or (0, 0.0, "", None)
    assert (attempts, next_at, error) == (1, None, None) and delivered_at
    assert store.due() == [] and store.next_due() is None
