"""One poller for every replica of an archive shared through PostgreSQL: two server processes' pollers, each with
an empty data directory of its own, never poll together; the one standing by takes over when the poller stops,
and a poller whose database session ended stops polling and stands by."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import psycopg
import pytest
from pydantic import SecretStr

from backend.core.types import ArticleOutcome, FileFormat, FileOutcome, Removal
from backend.settings import Settings
from backend.store.db import shared_database
from backend.store.feeds import FeedStore
from ingest.follow.fetch import Fetched, Fetcher
from ingest.follow.poller import Poller, follow_lock, keep_following
from ingest.lock import FOLLOW_KEY
from tests.follow.servers import RSS, Site, rss
from tests.follow.test_poller import FOLLOW

pytestmark = pytest.mark.integration


class CountingFetcher(Fetcher):
    """The real fetcher, counting the polls of the feed it was made for."""

    def __init__(self, feed: str) -> None:
        super().__init__(FOLLOW)
        self.feed, self.polls = feed, 0

    def get(self, url: str, **options: Any) -> Fetched:
        self.polls += url == self.feed
        return super().get(url, **options)


class NoWrites:
    """The archive writer of a feed that lists nothing: never called."""

    def add(self, records: Sequence[Mapping[str, Any]], origin: str = "api") -> list[ArticleOutcome]:
        raise AssertionError("nothing to write")

    def formats(self) -> list[FileFormat]:
        return []

    def add_file(self, name: str, data: BinaryIO) -> FileOutcome:
        raise AssertionError("nothing to write")

    def delete(self, id_or_url: str) -> Removal:
        raise AssertionError("nothing to delete")


class Replica:
    """A server process's poller thread (``keep_following``) on the shared database. ``ahead_s`` moves its clock
    on: every source is due for it at each round, so it polls all the time whenever it polls at all (two
    pollers on one clock fall into step, the later always finding the source just polled by the other)."""

    def __init__(self, settings: Settings, feed: str, standby_s: float, ahead_s: float) -> None:
        self.settings = settings
        self.fetcher = CountingFetcher(feed)
        feeds = FeedStore(shared_database(str(settings.database_url.get_secret_value())))  # type: ignore[union-attr]
        clock = lambda: time.time() + ahead_s  # noqa: E731
        self.poller = Poller(FOLLOW, feeds, NoWrites(), self.fetcher, clock=clock)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=keep_following, args=(self.poller, settings, self.stop, standby_s))

    def start(self) -> Replica:
        self.thread.start()
        return self

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.poller.close()


def _until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.05)


@pytest.fixture
def feed(site: Site, postgres_url: str) -> str:
    site.route("/feed.xml", rss([]), content_type=RSS)
    FeedStore(shared_database(postgres_url)).add(site.url("/feed.xml"), interval_s=0.2)  # due every 0.2 s
    return site.url("/feed.xml")


@pytest.fixture
def replicas(tmp_path: Path, postgres_url: str, feed: str) -> Iterator[Callable[..., Replica]]:
    made: list[Replica] = []

    def replica(name: str, standby_s: float, ahead_s: float = 0.0) -> Replica:
        settings = Settings(data_dir=tmp_path / name, database_url=SecretStr(postgres_url), follow=FOLLOW)
        made.append(Replica(settings, feed, standby_s, ahead_s).start())
        return made[-1]

    yield replica
    for one in made:
        one.halt()


def test_one_replica_polls_and_another_takes_over_when_it_stops(
    tmp_path: Path, replicas: Callable[..., Replica]
) -> None:
    first = replicas("a", 0.2)
    _until(lambda: first.fetcher.polls >= 2)
    second = replicas("b", 0.2, ahead_s=3600)
    time.sleep(1.5)  # several of its tries of the lock, and several polls of the first
    assert second.fetcher.polls == 0 and first.fetcher.polls >= 5
    assert follow_lock(second.settings) is None  # taken, for every replica
    first.halt()
    polled = first.fetcher.polls
    _until(lambda: second.fetcher.polls >= 2)
    assert first.fetcher.polls == polled
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # no lock file in a data directory


def test_a_replica_whose_session_ended_stops_polling_and_another_takes_over(
    postgres_url: str, replicas: Callable[..., Replica]
) -> None:
    first = replicas("a", 60.0)  # once it has lost the lock, it stands by longer than this test lasts
    _until(lambda: first.fetcher.polls >= 2)
    with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as admin:  # as a restart would
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND (classid::bigint << 32) | objid::bigint = %s",
            (FOLLOW_KEY,),
        ).fetchall()
    assert ended == [(True,)]
    time.sleep(1.0)  # a round of polling (0.2 s), and what it had under way when the session ended
    polled = first.fetcher.polls
    time.sleep(1.5)
    assert first.fetcher.polls == polled  # stopped, although the source falls due every 0.2 s
    second = replicas("b", 0.2, ahead_s=3600)
    _until(lambda: second.fetcher.polls >= 5)
    assert first.fetcher.polls == polled
