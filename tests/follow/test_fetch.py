"""ingest.follow.fetch against real servers on loopback that misbehave on purpose."""

from __future__ import annotations

import gzip
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from backend.core.net import Refused
from backend.settings import FollowSettings
from ingest.follow.fetch import Fetcher, FetchError, RobotsDenied
from tests.follow.servers import RSS, Item, Site, loopback_alias_works, rss

pytestmark = pytest.mark.integration

FEED = rss([Item("Strike ends", "https://harbor.example/strike", content="<p>Over.</p>")])
needs_alias = pytest.mark.skipif(not loopback_alias_works(), reason="127.0.0.2 cannot be bound here")


def follow_settings(**overrides: Any) -> FollowSettings:
    values: dict[str, Any] = {
        "allow_networks": "127.0.0.0/8",
        "host_interval_s": 0.0,
        "timeout_s": 5.0,
        "respect_robots": False,
    }
    return FollowSettings(**(values | overrides))


@contextmanager
def fetcher(**overrides: Any) -> Iterator[Fetcher]:
    with Fetcher(follow_settings(**overrides)) as running:
        yield running


class FakeTime:
    """The fetcher's clock and sleep: sleeping moves the clock, and every sleep asked for is kept."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


# --- SSRF


def test_loopback_is_refused_unless_allowed_and_the_message_names_the_setting(site: Site) -> None:
    site.route("/feed.xml", FEED, content_type=RSS)
    with fetcher(allow_networks="", respect_robots=True) as closed, pytest.raises(FetchError) as refused:
        closed.get(site.url("/feed.xml"), max_bytes=100_000)
    assert "BYLINE_FOLLOW__ALLOW_NETWORKS" in str(refused.value)
    assert isinstance(refused.value.__cause__, Refused) and refused.value.status is None
    assert site.hits("/feed.xml") == 0 and site.hits("/robots.txt") == 0
    with fetcher(allow_networks="127.0.0.0/8") as open_:
        fetched = open_.get(site.url("/feed.xml"), max_bytes=100_000)
    assert (fetched.status, fetched.body, fetched.content_type) == (200, FEED, RSS)


@needs_alias
def test_a_redirect_to_an_address_not_allowed_is_refused_without_connecting(site: Site) -> None:
    with Site("127.0.0.2") as elsewhere:
        elsewhere.route("/secret", "internal only")
        site.redirect("/go", elsewhere.url("/secret"))
        with fetcher(allow_networks="127.0.0.1/32") as narrow, pytest.raises(FetchError) as refused:
            narrow.get(site.url("/go"), max_bytes=10_000)
        assert isinstance(refused.value.__cause__, Refused) and "127.0.0.2" in str(refused.value)
        assert site.hits("/go") == 1 and elsewhere.hits("/secret") == 0
        with fetcher(allow_networks="127.0.0.0/8") as wide:
            assert wide.get(site.url("/go"), max_bytes=10_000).body == b"internal only"


@pytest.mark.parametrize(
    "target", ["http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/admin", "file:///etc/passwd"]
)
def test_redirects_to_metadata_private_or_local_files_are_refused(site: Site, target: str) -> None:
    site.redirect("/go", target)
    with fetcher() as follower, pytest.raises(FetchError, match="refused") as refused:
        follower.get(site.url("/go"), max_bytes=10_000)
    assert isinstance(refused.value.__cause__, Refused)


def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the first answer is checked and used; a second lookup would get a private address."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "feeds.test":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        address = "127.0.0.1" if len(lookups) == 1 else "10.66.66.66"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    site.route("/feed.xml", FEED, content_type=RSS)
    with fetcher() as follower:
        fetched = follower.get(f"http://feeds.test:{site.port}/feed.xml", max_bytes=100_000)
    assert fetched.body == FEED and lookups == ["feeds.test"]
    assert site.seen("/feed.xml")[0].headers["host"] == f"feeds.test:{site.port}"


# --- redirects


def test_redirects_relative_and_to_another_port_end_at_the_final_url(site: Site) -> None:
    site.route("/feeds/all.xml", FEED, content_type=RSS)
    site.redirect("/feeds/old", "all.xml", status=301)
    with Site() as other, fetcher() as follower:
        other.route("/feed.xml", "moved here")
        site.redirect("/moved", other.url("/feed.xml"), status=307)
        fetched = follower.get(site.url("/feeds/old"), max_bytes=100_000)
        assert (fetched.url, fetched.body) == (site.url("/feeds/all.xml"), FEED)
        moved = follower.get(site.url("/moved"), max_bytes=100_000)
        assert (moved.url, moved.body, other.hits("/feed.xml")) == (other.url("/feed.xml"), b"moved here", 1)


def test_a_redirect_loop_and_too_long_a_chain_end_in_errors(site: Site) -> None:
    site.redirect("/a", "/b")
    site.redirect("/b", "/a")
    for step in range(1, 4):
        site.redirect(f"/r{step}", f"/r{step + 1}")
    site.route("/r4", "the end")
    with fetcher(max_redirects=2) as follower:
        with pytest.raises(FetchError, match=r"too many redirects.*loop"):
            follower.get(site.url("/a"), max_bytes=1_000)
        assert (site.hits("/a"), site.hits("/b")) == (1, 1)
        with pytest.raises(FetchError, match="too many redirects: more than 2"):
            follower.get(site.url("/r1"), max_bytes=1_000)
        assert site.hits("/r4") == 0
    with fetcher(max_redirects=3) as follower:
        assert follower.get(site.url("/r1"), max_bytes=1_000).body == b"the end"


# --- conditional GET and errors


def test_conditional_get_round_trip_with_etag_and_last_modified(site: Site) -> None:
    site.route("/feed.xml", FEED, content_type=RSS, etag='"v1"')
    with fetcher() as follower:
        first = follower.get(site.url("/feed.xml"), max_bytes=100_000)
        assert (first.status, first.etag) == (200, '"v1"')
        again = follower.get(site.url("/feed.xml"), max_bytes=100_000, etag=first.etag)
        assert (again.status, again.body, again.etag) == (304, b"", '"v1"')
        assert site.seen("/feed.xml")[1].headers["if-none-match"] == '"v1"'
        grown = rss([Item("New", "https://harbor.example/new"), Item("Strike ends", "https://harbor.example/strike")])
        site.route("/feed.xml", grown, content_type=RSS, etag='"v2"')
        changed = follower.get(site.url("/feed.xml"), max_bytes=100_000, etag=first.etag)
        assert (changed.status, changed.body, changed.etag) == (200, grown, '"v2"')

        stamp = "Sun, 19 May 2024 16:00:00 GMT"
        site.route("/dated.xml", FEED, content_type=RSS, last_modified=stamp)
        dated = follower.get(site.url("/dated.xml"), max_bytes=100_000)
        assert dated.last_modified == stamp and dated.etag is None
        unchanged = follower.get(site.url("/dated.xml"), max_bytes=100_000, last_modified=stamp)
        assert (unchanged.status, unchanged.last_modified) == (304, stamp)
        assert site.seen("/dated.xml")[1].headers["if-modified-since"] == stamp


def test_retry_after_in_seconds_or_as_a_date_and_plain_errors(site: Site) -> None:
    site.fail("/busy", 503, retry_after="120")
    site.fail("/slow-down", 429, retry_after=format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True))
    site.fail("/broken", 500)
    with fetcher() as follower:
        with pytest.raises(FetchError) as busy:
            follower.get(site.url("/busy"), max_bytes=1_000)
        assert (busy.value.status, busy.value.retry_after_s) == (503, 120.0) and "503" in str(busy.value)
        with pytest.raises(FetchError) as limited:
            follower.get(site.url("/slow-down"), max_bytes=1_000)
        assert limited.value.status == 429 and limited.value.retry_after_s is not None
        assert 60 < limited.value.retry_after_s <= 91
        for path, status in (("/broken", 500), ("/nowhere", 404)):
            with pytest.raises(FetchError) as failed:
                follower.get(site.url(path), max_bytes=1_000)
            assert (failed.value.status, failed.value.retry_after_s) == (status, None)


def test_a_closed_port_is_a_fetch_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with fetcher() as follower, pytest.raises(FetchError, match="could not connect"):
        follower.get(f"http://127.0.0.1:{port}/feed.xml", max_bytes=1_000)


# --- limits


@pytest.mark.parametrize("head_too", [False, True], ids=["body", "headers"])
def test_a_slow_drip_is_cut_at_the_deadline(site: Site, head_too: bool) -> None:
    site.drip("/slow", b"x" * 8, every_s=0.5, head_too=head_too)  # 4 s of body, longer with the headers
    with fetcher(timeout_s=1.0) as follower:
        start = time.monotonic()
        with pytest.raises(FetchError, match="took longer than 1 s"):
            follower.get(site.url("/slow"), max_bytes=1_000)
        assert time.monotonic() - start < 2.5


def test_a_silent_server_is_cut_at_the_deadline(site: Site) -> None:
    site.hang("/silent")
    with fetcher(timeout_s=1.0) as follower:
        start = time.monotonic()
        with pytest.raises(FetchError, match="took longer than 1 s"):
            follower.get(site.url("/silent"), max_bytes=1_000)
        assert time.monotonic() - start < 2.5


def test_an_endless_body_is_cut_once_it_passes_the_limit(site: Site) -> None:
    site.endless("/forever")
    with fetcher() as follower, pytest.raises(FetchError, match="larger than 100000 bytes") as cut:
        follower.get(site.url("/forever"), max_bytes=100_000)
    assert cut.value.status == 200
    site.wait_idle()
    assert site.sent("/forever") < 50_000_000


def test_a_content_length_above_the_limit_is_refused_before_reading(site: Site) -> None:
    size = 500_000_000
    site.huge("/big", size)
    site.huge("/big-unannounced", size, content_length=False)
    with fetcher() as follower:
        with pytest.raises(FetchError, match=re.escape(f"larger than 1000000 bytes (Content-Length {size})")):
            follower.get(site.url("/big"), max_bytes=1_000_000)
        with pytest.raises(FetchError, match=r"larger than 1000000 bytes$"):
            follower.get(site.url("/big-unannounced"), max_bytes=1_000_000)
    assert site.wait_idle()
    assert site.sent("/big") < size // 10 and site.sent("/big-unannounced") < size // 10


def test_a_gzipped_body_is_decoded_and_counted_decoded(site: Site) -> None:
    packed = gzip.compress(FEED)
    site.route("/feed.xml", packed, content_type=RSS, headers={"Content-Encoding": "gzip"})
    site.route("/bomb.xml", gzip.compress(b"\0" * 5_000_000), headers={"Content-Encoding": "gzip"})
    with fetcher() as follower:
        assert follower.get(site.url("/feed.xml"), max_bytes=100_000).body == FEED
        with pytest.raises(FetchError, match="larger than 100000 bytes"):
            follower.get(site.url("/bomb.xml"), max_bytes=100_000)


# --- politeness


def test_robots_forbids_and_is_read_once_for_several_fetches(site: Site) -> None:
    site.robots("User-agent: *\nDisallow: /private\n")
    site.route("/feed.xml", FEED, content_type=RSS)
    site.route("/private/feed.xml", FEED, content_type=RSS)
    with fetcher(respect_robots=True) as follower:
        with pytest.raises(RobotsDenied, match=r"robots\.txt of 127\.0\.0\.1 forbids"):
            follower.get(site.url("/private/feed.xml"), max_bytes=100_000)
        for _ in range(3):
            assert follower.get(site.url("/feed.xml"), max_bytes=100_000).status == 200
    assert (site.hits("/robots.txt"), site.hits("/private/feed.xml"), site.hits("/feed.xml")) == (1, 0, 3)
    with fetcher(respect_robots=False) as rude:
        assert rude.get(site.url("/private/feed.xml"), max_bytes=100_000).status == 200
    assert site.hits("/robots.txt") == 1


def test_robots_rules_for_byline_by_name_and_a_redirect_into_a_forbidden_path(site: Site) -> None:
    site.robots("User-agent: Googlebot\nDisallow:\n\nUser-agent: Byline\nDisallow: /archive\n")
    site.route("/archive/feed.xml", FEED)
    site.redirect("/feed.xml", "/archive/feed.xml")
    with fetcher(respect_robots=True) as follower, pytest.raises(RobotsDenied):
        follower.get(site.url("/feed.xml"), max_bytes=100_000)
    assert site.hits("/archive/feed.xml") == 0


def test_robots_is_read_again_after_an_hour(site: Site) -> None:
    site.robots("User-agent: *\nDisallow:\n")
    site.route("/feed.xml", FEED)
    fake = FakeTime()
    with Fetcher(follow_settings(respect_robots=True), clock=fake.clock, sleep=fake.sleep) as follower:
        follower.get(site.url("/feed.xml"), max_bytes=100_000)
        site.robots("User-agent: *\nDisallow: /\n")
        fake.now += 1_800
        follower.get(site.url("/feed.xml"), max_bytes=100_000)
        fake.now += 1_801
        with pytest.raises(RobotsDenied):
            follower.get(site.url("/feed.xml"), max_bytes=100_000)
    assert (site.hits("/robots.txt"), site.hits("/feed.xml")) == (2, 2)


def test_a_missing_robots_allows_and_a_broken_one_means_later(site: Site) -> None:
    site.route("/feed.xml", FEED)
    with fetcher(respect_robots=True) as follower:
        assert follower.get(site.url("/feed.xml"), max_bytes=100_000).status == 200  # /robots.txt is a 404
    with Site() as broken, fetcher(respect_robots=True) as follower:
        broken.fail("/robots.txt", 503, retry_after="60")
        broken.route("/feed.xml", FEED)
        with pytest.raises(FetchError, match=r"robots\.txt .* trying later") as later:
            follower.get(broken.url("/feed.xml"), max_bytes=100_000)
        assert not isinstance(later.value, RobotsDenied)
        assert (later.value.status, later.value.retry_after_s, broken.hits("/feed.xml")) == (503, 60.0, 0)


def test_one_request_per_host_per_interval_asks_for_the_right_sleeps(site: Site) -> None:
    site.route("/feed.xml", FEED)
    fake = FakeTime()
    with Site() as same_host, Fetcher(follow_settings(host_interval_s=5.0), clock=fake.clock, sleep=fake.sleep) as f:
        same_host.route("/feed.xml", FEED)
        f.get(site.url("/feed.xml"), max_bytes=100_000)
        f.get(site.url("/feed.xml"), max_bytes=100_000)
        fake.now += 2.0
        f.get(same_host.url("/feed.xml"), max_bytes=100_000)  # another port, the same host
        assert fake.sleeps == [5.0, 3.0]
        fake.now += 60.0
        f.get(site.url("/feed.xml"), max_bytes=100_000)
        assert fake.sleeps == [5.0, 3.0]
        if loopback_alias_works():
            with Site("127.0.0.2") as other_host:
                other_host.route("/feed.xml", FEED)
                f.get(other_host.url("/feed.xml"), max_bytes=100_000)
            assert fake.sleeps == [5.0, 3.0]


def test_crawl_delay_lengthens_the_interval(site: Site) -> None:
    site.robots("User-agent: *\nCrawl-delay: 7\n")
    site.route("/feed.xml", FEED)
    fake = FakeTime()
    settings = follow_settings(host_interval_s=2.0, respect_robots=True)
    with Fetcher(settings, clock=fake.clock, sleep=fake.sleep) as follower:
        follower.get(site.url("/feed.xml"), max_bytes=100_000)
        follower.get(site.url("/feed.xml"), max_bytes=100_000)
    assert fake.sleeps == [7.0, 7.0]  # after robots.txt, then between the two fetches


def test_every_request_says_who_we_are(site: Site) -> None:
    site.route("/feed.xml", FEED)
    with fetcher(respect_robots=True) as follower:
        follower.get(site.url("/feed.xml"), max_bytes=100_000)
        agent = follower.user_agent
    assert re.fullmatch(r"Byline/\d+\.\d+\S* \(\+news archive follower\)", agent)
    assert [s.headers["user-agent"] for s in site.seen("/robots.txt") + site.seen("/feed.xml")] == [agent, agent]
