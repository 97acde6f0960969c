"""What every saved-questions store does, on SQLite and on PostgreSQL alike.

An implementation's suite subclasses ``WatchStoreContract`` and provides ``make_store``: a callable that opens
the test's store, empty at first, on the given clock; each call opens the same store again, as another
process (or another API replica) would.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Protocol

import pytest

from backend.core.errors import InvalidRequest, NotFound
from backend.core.types import Citation, EventArticle, SearchFilters, ShortAnswer
from backend.store.watches import WatchStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class MakeStore(Protocol):
    def __call__(self, clock: Clock | None = None) -> WatchStore: ...


URL = "https://e.org/1"
ARTICLE = EventArticle("new-1", "A new commander", URL, "Northern Dispatch", datetime(2024, 5, 1, tzinfo=UTC))
CITATION = Citation(1, "new-1", URL, "A new commander", "Northern Dispatch", None, "Aram Dizayi commands.")
SHORT = ShortAnswer("Aram Dizayi", 1, 0.8, ("Northern Dispatch",))
HOOK = "https://hooks.example/byline"


class WatchStoreContract:
    def test_watches_belong_to_their_owner_and_are_limited(self, make_store: MakeStore) -> None:
        store = make_store()
        filters = SearchFilters(sources=("Reuters",), published_after=date(2024, 1, 1))
        mine = store.create("key-a", "Who commands the sector?", filters, max_per_owner=2)
        store.create("key-a", "Who won the cup?", max_per_owner=2)
        with pytest.raises(InvalidRequest):
            store.create("key-a", "one too many", max_per_owner=2)
        other = make_store().create("key-b", "Who won the cup?")
        assert mine.filters == filters and make_store().get(mine.id, "key-a") == mine
        for call in (store.get, store.delete, store.mark_read, store.events):
            with pytest.raises(NotFound):
                call(mine.id, "key-b")
        assert [w.question for w in store.owned("key-a")] == ["Who won the cup?", "Who commands the sector?"]
        assert other.id in {w.id for w in store.every()} and store.count() == 3
        store.delete(mine.id, "key-a")
        assert store.count() == 2

    def test_an_article_fires_a_watch_once_and_events_come_back_whole(self, make_store: MakeStore) -> None:
        store = make_store()
        watch = store.create("k", "Who commands the sector?")
        event = store.record(watch, ARTICLE, "Aram Dizayi [1].", [CITATION], SHORT)
        assert event is not None
        assert make_store().record(watch, ARTICLE, "again [1].", [CITATION], SHORT) is None  # even from elsewhere
        second = store.record(watch, EventArticle("new-2", "t", None, None, None), "Someone [1].", [], None)
        assert second is not None
        assert store.events(watch.id, "k") == [second, event] and store.event(event.id) == event
        assert store.unread("k") == 2 and store.mark_read(watch.id, "k") == 2 and store.unread("k") == 0
        assert store.get(watch.id, "k").last_event_at == second.created_at
        store.delete(watch.id, "k")
        assert store.event(event.id) is None  # the events go with their watch
        assert store.record(watch, ARTICLE, "gone", [], None) is None  # a deleted watch fires nothing

    def test_the_queue_is_claimed_once_and_again_after_a_lease(self, make_store: MakeStore) -> None:
        clock = Clock()
        store, other = make_store(clock), make_store(clock)
        store.enqueue(["a", "b", "c"])
        assert [a for _, a in store.claim(2, lease_s=60)] == ["a", "b"]
        assert [a for _, a in other.claim(10, lease_s=60)] == ["c"]  # a second checker takes the rest
        assert other.pending() == 3 and other.claim(10) == []
        clock.now += 61
        retaken = other.claim(10)
        assert [a for _, a in retaken] == ["a", "b", "c"]
        clock.now += 50
        other.renew([t for t, _ in retaken], lease_s=60)  # a check that outlasts its first lease keeps its claim
        clock.now += 50
        assert store.claim(10) == []
        other.done([t for t, _ in retaken])
        assert store.pending() == 0 and store.claim(10) == []

    def test_deliveries_are_scheduled_backed_off_and_settled(self, make_store: MakeStore) -> None:
        clock = Clock()
        store = make_store(clock)
        hooked = store.create("k", "q", webhook_url=HOOK)
        event = store.record(hooked, ARTICLE, "a", [], None)
        assert event is not None and store.record(store.create("k", "q2"), ARTICLE, "a", [], None) is not None
        assert store.next_due() == clock.now
        [due] = store.due(lease_s=100)
        assert (due.event_id, due.url, due.secret, due.attempts) == (event.id, HOOK, hooked.webhook_secret, 0)
        assert make_store(clock).due() == []  # claimed
        assert store.failed(event.id, "HTTP 500", attempts=3, backoff_s=30.0) == clock.now + 30.0
        clock.now += 30.0
        [again] = make_store(clock).due()
        assert again.attempts == 1 and again.last_error == "HTTP 500"
        store.delivered(event.id)
        attempts, next_at, error, delivered_at = store.delivery(event.id) or (0, 0.0, "", None)
        assert (attempts, next_at, error) == (2, None, None) and delivered_at
        assert store.due() == [] and store.next_due() is None
        # An attempt that outlived its lease fails after another delivered: the delivery stays delivered.
        assert store.failed(event.id, "timed out", attempts=3, backoff_s=30.0) is None
        assert store.delivery(event.id) == (attempts, None, None, delivered_at) and store.next_due() is None
