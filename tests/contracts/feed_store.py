"""What every followed-sources store does, on SQLite and on PostgreSQL alike.

An implementation's suite subclasses ``FeedStoreContract`` and provides ``make_store``: a callable that opens
the test's store, empty at first; each call opens the same store again, as another process would.
"""

from __future__ import annotations

from typing import Protocol

import pytest

from backend.core.errors import InvalidRequest, NotFound
from backend.store.feeds import MAX_ITEM_ATTEMPTS, FeedStore, Polled


class MakeStore(Protocol):
    def __call__(self) -> FeedStore: ...


class FeedStoreContract:
    def test_a_source_is_followed_once_found_by_id_or_url_and_removed(self, make_store: MakeStore) -> None:
        feeds = make_store()
        source = feeds.add("https://news.example/feed.xml", "Example News", 600.0)
        assert source.last_status == "pending" and source.failures == 0 and source.title == "Example News"
        again = make_store()
        assert again.get(source.id) == again.get("https://news.example/feed.xml") == source
        assert [s.id for s in again.due()] == [source.id] and again.next_due() == source.next_at
        with pytest.raises(InvalidRequest, match="followed already"):
            again.add("https://news.example/feed.xml")
        assert feeds.remove(source.url).id == source.id
        with pytest.raises(NotFound):
            again.get(source.id)
        assert again.sources() == [] and again.next_due() is None

    def test_health_and_validators_follow_each_poll(self, make_store: MakeStore) -> None:
        feeds = make_store()
        source = feeds.add("https://news.example/rss")
        feeds.record(source, Polled("ok", 200, new=3, kind="rss", title="Feed title", ttl_s=1800, etag='"v1"'), 1e12)
        after = make_store().get(source.id)
        assert (after.last_status, after.kind, after.feed_title, after.ttl_s, after.etag, after.next_at) == (
            "ok", "rss", "Feed title", 1800, '"v1"', 1e12
        )  # fmt: skip
        assert feeds.due() == []
        # A failure keeps the validators and what the feed said of itself, and counts in a row.
        feeds.record(after, Polled("error", 500, error="HTTP 500"), 1.0)
        feeds.record(after, Polled("error", None, error="timed out"), 1.0)
        failing = feeds.get(source.id)
        assert (failing.failures, failing.etag, failing.kind, failing.last_error, failing.total_new) == (
            2, '"v1"', "rss", "timed out", 3
        )  # fmt: skip
        feeds.record(failing, Polled("ok", 200, new=2, etag='"v2"'), 1.0)
        fine = feeds.get(source.id)
        assert (fine.failures, fine.etag, fine.last_error, fine.last_new, fine.total_new) == (0, '"v2"', None, 2, 5)

    def test_items_are_known_by_key_and_retries_are_given_up(self, make_store: MakeStore) -> None:
        feeds = make_store()
        keys = ["https://news.example/a", "https://news.example/b", "https://news.example/c"]
        assert feeds.unseen(keys) == dict.fromkeys(keys, 0)
        feeds.taken("src1", [(keys[0], "a1", "new", None), (keys[1], None, "retry", "HTTP 500")])
        assert make_store().unseen(keys) == {keys[1]: 1, keys[2]: 0}
        for _ in range(MAX_ITEM_ATTEMPTS - 1):
            feeds.taken("src2", [(keys[1], None, "retry", "HTTP 500")])
        assert feeds.unseen(keys) == {keys[2]: 0}  # given up
        # An item stays with the source that first listed it.
        assert {row[0]: row[2:] for row in make_store().items("src1")} == {
            keys[0]: ("new", 1, None),
            keys[1]: ("retry", MAX_ITEM_ATTEMPTS, "HTTP 500"),
        }
        assert feeds.items("src2") == []
