"""The webhook senders of two replicas on one database (a SQLite file, or PostgreSQL): every event is POSTed
once, even when one replica's receiver is so slow that its deliveries take longer than a lease."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from backend.answering.webhooks import EVENT_HEADER, WebhookSender
from backend.core.net import parse_networks
from backend.core.types import EventArticle
from backend.settings import WatchSettings
from backend.store.db import Database, shared_database
from backend.store.watches import WatchStore
from tests.contracts.watch_store import Clock

SETTINGS = WatchSettings(webhook_timeout_s=10)  # an attempt's lease: 60 s
EVENTS = 20


class Receiver(httpx.BaseTransport):
    """The webhook's receiver, answering 200 and keeping each event id it gets. Each POST through it takes
    ``taking_s`` on the stores' clock, and during the third ``meanwhile`` runs: the other replica's sender."""

    def __init__(self, got: list[str], clock: Clock, taking_s: float = 0.0) -> None:
        self.got, self.clock, self.taking_s = got, clock, taking_s
        self.posts = 0
        self.meanwhile: Callable[[], object] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.got.append(request.headers[EVENT_HEADER])
        self.posts += 1
        self.clock.now += self.taking_s
        if self.posts == 3 and self.meanwhile is not None:
            self.meanwhile()
        return httpx.Response(200)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[Clock], tuple[WatchStore, ...]]]:
    """Two replicas' stores of saved questions on one database: one SQLite file, or one PostgreSQL database with
    an engine each."""
    engines: list[sa.Engine] = []

    def make(clock: Clock) -> tuple[WatchStore, ...]:
        if request.param == "sqlite":
            return WatchStore(tmp_path / "watches.sqlite3", clock), WatchStore(tmp_path / "watches.sqlite3", clock)
        url = request.getfixturevalue("postgres_url")
        engines.append(sa.create_engine(url))
        return WatchStore(shared_database(url), clock), WatchStore(Database(engines[-1]), clock)

    yield make
    for engine in engines:
        engine.dispose()


def test_two_replicas_post_each_event_once_behind_a_slow_receiver(
    replicas: Callable[[Clock], tuple[WatchStore, ...]],
) -> None:
    clock = Clock()
    first, second = replicas(clock)
    watch = first.create("k", "Who commands the sector?", webhook_url="http://127.0.0.1:9/hook")
    events = []
    for n in range(EVENTS):
        article = EventArticle(f"a{n}", f"Article {n}", None, "Wire", datetime(2024, 5, n + 1, tzinfo=UTC))
        event = first.record(watch, article, "Aram Dizayi [1].", (), None)
        assert event is not None
        events.append(event.id)
    got: list[str] = []
    slow, quick = Receiver(got, clock, taking_s=40.0), Receiver(got, clock)  # two POSTs outlast one lease
    allowed = parse_networks("127.0.0.0/8")
    senders = [
        WebhookSender(first, SETTINGS, allowed, transport=slow),
        WebhookSender(second, SETTINGS, allowed, transport=quick),
    ]
    slow.meanwhile = senders[1].deliver_due  # the other replica's sender wakes while this one waits on a receiver
    try:
        senders[0].deliver_due()
    finally:
        for sender in senders:
            sender.stop()
    assert sorted(got) == sorted(events)  # each once
    assert quick.posts > 0 and slow.posts > 0  # both replicas sent some
    assert all((first.delivery(e) or (0, None, None, None))[3] for e in events) and first.next_due() is None
