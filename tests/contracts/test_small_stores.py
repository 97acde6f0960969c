"""The followed-sources and saved-questions contracts against both backends: a SQLite file of the embedded
default, and a PostgreSQL database (marked ``integration``: the cluster is started by the tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.store.db import shared_database
from backend.store.feeds import FeedStore
from backend.store.watches import WatchStore
from tests.contracts import feed_store, watch_store


class TestSqliteFeedStore(feed_store.FeedStoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> feed_store.MakeStore:
        return lambda: FeedStore(tmp_path / "feeds.sqlite3")


@pytest.mark.integration
class TestPostgresFeedStore(feed_store.FeedStoreContract):
    @pytest.fixture
    def make_store(self, postgres_url: str) -> feed_store.MakeStore:
        return lambda: FeedStore(shared_database(postgres_url))


class TestSqliteWatchStore(watch_store.WatchStoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> watch_store.MakeStore:
        return lambda clock=None: WatchStore(tmp_path / "watches.sqlite3", clock or watch_store.Clock())


@pytest.mark.integration
class TestPostgresWatchStore(watch_store.WatchStoreContract):
    @pytest.fixture
    def make_store(self, postgres_url: str) -> watch_store.MakeStore:
        return lambda clock=None: WatchStore(shared_database(postgres_url), clock or watch_store.Clock())
