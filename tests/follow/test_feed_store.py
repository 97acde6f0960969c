"""The followed sources' store: schedule, health, validators and the items taken, across reopening."""

from dataclasses import replace
from pathlib import Path

import pytest

from backend.core.errors import InvalidRequest, NotFound
from backend.core.net import canonical_url
from backend.settings import FollowSettings
from backend.store.feeds import MAX_ITEM_ATTEMPTS, FeedStore, Polled, effective_interval_s
from ingest.follow.poller import delay_s


def test_a_source_is_followed_once_found_by_id_or_url_and_removed(tmp_path: Path) -> None:
    feeds = FeedStore(tmp_path / "feeds.sqlite3")
    source = feeds.add("https://news.example/feed.xml", "Example News", 600.0)
    assert source.last_status == "pending" and source.failures == 0 and source.title == "Example News"
    assert feeds.get(source.id) == feeds.get("https://news.example/feed.xml") == source
    assert [s.id for s in feeds.due()] == [source.id]  # due at once
    with pytest.raises(InvalidRequest, match="followed already"):
        feeds.add("https://news.example/feed.xml")
    assert feeds.remove(source.url).id == source.id
    with pytest.raises(NotFound):
        feeds.get(source.id)
    assert feeds.sources() == [] and feeds.next_due() is None


def test_health_and_validators_follow_each_poll_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "feeds.sqlite3"
    feeds = FeedStore(path)
    source = feeds.add("https://news.example/rss")
    feeds.record(source, Polled("ok", 200, new=3, kind="rss", title="Feed title", ttl_s=1800, etag='"v1"'), 1e12)
    after = FeedStore(path).get(source.id)
    assert (after.last_status, after.kind, after.feed_title, after.ttl_s, after.etag) == (
        "ok",
        "rss",
        "Feed title",
        1800,
        '"v1"',
    )
    assert after.title is None  # the outlet's name is only what the source was given
    assert (after.last_new, after.total_new, after.next_at) == (3, 3, 1e12)
    assert feeds.due() == []

    # A failure keeps the validators (the feed did not change as far as Byline knows) and counts in a row.
    feeds.record(after, Polled("error", 500, error="HTTP 500"), 1.0)
    feeds.record(feeds.get(source.id), Polled("error", None, error="timed out"), 1.0)
    failing = feeds.get(source.id)
    assert (failing.failures, failing.etag, failing.last_error, failing.total_new) == (2, '"v1"', "timed out", 3)
    # A 304 keeps them too; a success clears the failures and names no error.
    feeds.record(failing, Polled("not_modified", 304), 1.0)
    fine = feeds.get(source.id)
    assert (fine.failures, fine.etag, fine.last_error, fine.feed_title) == (0, '"v1"', None, "Feed title")


def test_items_are_known_by_key_across_sources_and_retries_are_given_up(tmp_path: Path) -> None:
    feeds = FeedStore(tmp_path / "feeds.sqlite3")
    keys = ["https://a.example/1", "https://a.example/2", "https://a.example/3"]
    assert feeds.unseen(keys) == dict.fromkeys(keys, 0)
    feeds.taken("src1", [(keys[0], "u1", "new", None), (keys[1], None, "retry", "page not read: HTTP 500")])
    # Another source listing the same URL does not take it again.
    assert feeds.unseen(keys) == {keys[1]: 1, keys[2]: 0}
    for _ in range(MAX_ITEM_ATTEMPTS - 1):
        feeds.taken("src2", [(keys[1], None, "retry", "page not read: HTTP 500")])
    assert feeds.unseen(keys) == {keys[2]: 0}  # tried enough
    rows = {key: (outcome, attempts) for key, _, outcome, attempts, _ in feeds.items()}
    assert rows[keys[1]] == ("retry", MAX_ITEM_ATTEMPTS) and rows[keys[0]] == ("new", 1)


def test_the_schedule_takes_the_ttl_the_floor_backoff_and_retry_after(tmp_path: Path) -> None:
    settings = FollowSettings(interval_s=900, min_interval_s=60, max_backoff_s=3600)
    feeds = FeedStore(tmp_path / "feeds.sqlite3")
    source = feeds.add("https://news.example/rss")
    assert effective_interval_s(source, settings) == 900
    feeds.record(source, Polled("ok", 200, ttl_s=300), 0.0)
    short = feeds.get(source.id)
    assert effective_interval_s(short, settings) == 300  # the feed's ttl shortens it
    feeds.record(short, Polled("ok", 200, ttl_s=10), 0.0)
    assert effective_interval_s(feeds.get(source.id), settings) == 60  # never under the floor
    assert effective_interval_s(feeds.add("https://b.example/rss", interval_s=5), settings) == 60

    # ``failures`` counts those before this one: the first failure waits the interval, then it doubles.
    waits = [delay_s(replace(source, failures=n), Polled("error"), settings, None) for n in range(5)]
    assert waits == [900, 1800, 3600, 3600, 3600]
    assert delay_s(source, Polled("error", 503), settings, 7200) == 7200  # Retry-After wins
    assert delay_s(replace(source, failures=3), Polled("ok"), settings, None) == 900


def test_urls_have_one_spelling() -> None:
    assert canonical_url("HTTPS://News.Example:443/a/B?utm_source=rss&id=7#top") == "https://news.example/a/B?id=7"
    assert canonical_url("http://news.example:8080") == "http://news.example:8080"
