"""The poller against real sites on loopback that behave well and badly, writing a real archive."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from backend.embedding import SentenceTransformerEmbedder
from backend.services import Services, build_services
from backend.settings import ApiSettings, FollowSettings, Settings
from backend.store.feeds import MAX_ITEM_ATTEMPTS, Source
from byline.server import follow_tasks
from ingest.follow.poller import Poller
from ingest.writer import with_writer
from tests.conftest import ServerThread
from tests.follow.servers import HTML, RSS, XML, Item, Site, news_sitemap, rss, sitemap_index

pytestmark = pytest.mark.integration

FOLLOW = FollowSettings(allow_networks="127.0.0.0/8", host_interval_s=0, min_interval_s=0, timeout_s=5)


def page(title: str, *paragraphs: str, site_name: str = "Harbor Post", published: str = "2024-05-02") -> bytes:
    """An article page as a news site serves it: navigation, the article, a footer."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!doctype html><html><head><title>{title}</title>"
        f'<meta property="og:site_name" content="{site_name}">'
        f'<meta property="article:published_time" content="{published}T09:00:00Z">'
        "</head><body><nav><a href='/'>Home</a> <a href='/world'>World</a></nav>"
        f"<article><h1>{title}</h1>{body}</article><footer>All rights reserved.</footer></body></html>"
    ).encode()


def story(n: int, topic: str = "harbour") -> tuple[str, ...]:
    """Three paragraphs long enough for the extractor to take them for an article."""
    return (
        f"The {topic} authority said on Tuesday that work on berth {n} would finish before the summer, after"
        f" inspectors found the old quay wall sound enough to keep.",
        f"Engineer number {n} told reporters that the project had cost less than planned, since the cranes were"
        " rented from a neighbouring port for the months the work needed them.",
        f"Dock workers at berth {n} said they welcomed the work but wanted the night shifts kept while it lasts,"
        " and their union will meet the authority next week.",
    )


@pytest.fixture
def archive(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> Iterator[Services]:
    settings = Settings(data_dir=tmp_path / "data", api=ApiSettings(rate_per_minute=0), follow=FOLLOW)
    services = with_writer(build_services(settings, embedder))
    yield services
    services.close()


def _poller(services: Services, **changes: object) -> Poller:
    assert services.writer is not None
    return Poller(FOLLOW.model_copy(update=changes), services.feeds, services.writer)


def _follow(services: Services, url: str, title: str | None = None) -> Source:
    return services.feeds.add(url, title)


def _articles(services: Services) -> dict[str, str]:
    """Stored article id -> title."""
    _, records = services.registry.listing(200, 0, None, None)
    return {r.id: r.title for r in records}


def _due_now(services: Services, source: Source) -> Source:
    """The source as stored, made due (tests poll again without waiting for the schedule)."""
    return services.feeds.get(source.id)


def test_a_full_content_feed_is_stored_with_its_outlet_and_a_304_takes_nothing(site: Site, archive: Services) -> None:
    items = [
        Item(f"Berth {n} works to end by summer", site.url(f"/news/{n}?utm_source=rss"), f"g{n}",
             datetime(2024, 5, n, 9, tzinfo=UTC), content="".join(f"<p>{p}</p>" for p in story(n)))
        for n in (1, 2, 3)
    ]  # fmt: skip
    site.route("/feed.xml", rss(items, title="Harbor Post"), content_type=RSS, etag='"v1"')
    source = _follow(archive, site.url("/feed.xml"))
    poller = _poller(archive)

    polled = poller.poll(source)
    assert (polled.status, polled.new, polled.kind) == ("ok", 3, "rss")
    stored = _articles(archive)
    assert sorted(stored.values()) == sorted(i.title for i in items)
    record = next(iter(archive.registry.get(list(stored)).values()))
    assert record.source == "Harbor Post" and record.url is not None and "utm_source" not in record.url
    assert site.hits("/news/1") == 0  # the feed carried the whole text: no page fetched
    assert site.seen("/feed.xml")[0].headers["user-agent"].startswith("Byline/")

    again = poller.poll(_due_now(archive, source))
    assert (again.status, again.new) == ("not_modified", 0)
    assert site.seen("/feed.xml")[-1].headers.get("if-none-match") == '"v1"'
    health = archive.feeds.get(source.id)
    assert (health.last_status, health.total_new, health.failures) == ("not_modified", 3, 0)
    assert len(_articles(archive)) == 3


def test_summary_only_entries_are_stored_with_the_text_of_their_page(site: Site, archive: Services) -> None:
    site.route("/news/7", page("Tram line reaches the airport", *story(7, "tram")), content_type=HTML)
    items = [Item("Tram line reaches the airport", site.url("/news/7"), "t7", "Thu, 02 May 2024 09:00:00 GMT",
                  summary="The tram will reach the airport.")]  # fmt: skip
    site.route("/feed.xml", rss(items), content_type=RSS)
    polled = _poller(archive).poll(_follow(archive, site.url("/feed.xml"), title="Harbor Post Transport"))
    assert (polled.status, polled.new) == ("ok", 1)
    (article_id,) = _articles(archive)
    text = archive.store.article_text(article_id)
    assert "rented from a neighbouring port" in text  # from the page, not the feed's one-line summary
    record = archive.registry.get([article_id])[article_id]
    assert record.source == "Harbor Post Transport"  # the name the source was given
    assert record.published_at is not None and record.published_at.startswith("2024-05-02")


def test_an_item_is_taken_once_across_new_guids_new_items_and_two_feeds(site: Site, archive: Services) -> None:
    def items(*numbers: int, guid: str = "a") -> list[Item]:
        return [
            Item(
                f"Berth {n} works",
                site.url(f"/news/{n}"),
                f"{guid}{n}",
                content="".join(f"<p>{p}</p>" for p in story(n)),
            )
            for n in numbers
        ]

    site.route("/one.xml", rss(items(1, 2)), content_type=RSS)
    site.route("/two.xml", rss(items(2, 3), title="Meridian Wire"), content_type=RSS)
    first, second = _follow(archive, site.url("/one.xml")), _follow(archive, site.url("/two.xml"))
    poller = _poller(archive)
    assert poller.poll(first).new == 2
    assert poller.poll(second).new == 1  # berth 2 moved to another feed: not taken again
    # The first feed repeats its items under new GUIDs and gains one.
    site.route("/one.xml", rss(items(1, 2, 4, guid="b")), content_type=RSS)
    assert poller.poll(_due_now(archive, first)).new == 1
    assert sorted(_articles(archive).values()) == ["Berth 1 works", "Berth 2 works", "Berth 3 works", "Berth 4 works"]
    assert archive.store.count() == sum(r.chunks for r in archive.registry.get(list(_articles(archive))).values())


def test_sources_that_misbehave_are_recorded_and_do_not_stop_the_others(site: Site, archive: Services) -> None:
    good = [Item(f"Berth {n} works", site.url(f"/news/{n}"), f"g{n}", content="".join(f"<p>{p}</p>" for p in story(n)))
            for n in (1, 2)]  # fmt: skip
    site.route("/good.xml", rss(good), content_type=RSS)
    site.route("/malformed.xml", b"<<< not xml, not a feed", content_type=RSS)
    # Cut off inside its third item: the two whole items before the break are still taken.
    whole = [Item(f"Berth {n} works", site.url(f"/news/{n}"), f"g{n}", content="".join(f"<p>{p}</p>" for p in story(n)))
             for n in (3, 4, 5)]  # fmt: skip
    truncated = rss(whole)
    site.route("/truncated.xml", truncated[: truncated.index(b"Berth 5 works") + 5], content_type=RSS)
    site.route("/html.xml", page("Not a feed", *story(9)), content_type=HTML)
    site.fail("/error.xml", 500)
    site.redirect("/loop-a.xml", "/loop-b.xml")
    site.redirect("/loop-b.xml", "/loop-a.xml")
    site.drip("/slow.xml", rss(good), every_s=0.5)
    site.endless("/endless.xml")
    bad = ["/malformed.xml", "/html.xml", "/error.xml", "/loop-a.xml", "/slow.xml", "/endless.xml"]
    for path in bad:
        _follow(archive, site.url(path))
    _follow(archive, site.url("/good.xml"))
    _follow(archive, site.url("/truncated.xml"))
    poller = _poller(archive, timeout_s=1.5, max_feed_bytes=200_000)

    started = time.monotonic()
    results = {s.url.removeprefix(site.url("")): p for s, p in poller.poll_due()}
    assert time.monotonic() - started < 60  # each bad source ends by its limit, not the server's whim
    assert (results["/good.xml"].status, results["/good.xml"].new) == ("ok", 2)
    assert (results["/truncated.xml"].status, results["/truncated.xml"].new) == ("ok", 2)
    for path in bad:
        assert results[path].status == "error", path
    errors = {path: results[path].error or "" for path in bad}
    assert "500" in errors["/error.xml"] and "redirect" in errors["/loop-a.xml"]
    assert "1.5" in errors["/slow.xml"] and "200000" in errors["/endless.xml"].replace(",", "")
    assert "not a feed" in errors["/malformed.xml"] and "not a feed" in errors["/html.xml"]
    for source in archive.feeds.sources():
        failing = source.url not in (site.url("/good.xml"), site.url("/truncated.xml"))
        assert (source.failures == 1) is failing and (source.last_error is not None) is failing
        assert source.next_at > time.time()  # none is polled again at once
    assert sorted(_articles(archive).values()) == [f"Berth {n} works" for n in (1, 2, 3, 4)]


def test_retry_after_and_backoff_decide_the_next_poll(site: Site, archive: Services) -> None:
    site.fail("/busy.xml", 503, retry_after="7200")
    source = _follow(archive, site.url("/busy.xml"))
    before = time.time()
    polled = _poller(archive, interval_s=60).poll(source)
    assert polled.status == "error" and polled.http_status == 503
    assert archive.feeds.get(source.id).next_at >= before + 7200


@pytest.mark.parametrize("fault", ["500", "huge", "endless", "slow"])
def test_a_page_that_fails_is_tried_again_then_kept_with_its_summary(site: Site, archive: Services, fault: str) -> None:
    match fault:
        case "500":
            site.fail("/news/5", 500)
        case "huge":
            site.huge("/news/5", 20_000_000, content_type=HTML)
        case "endless":
            site.endless("/news/5", content_type=HTML)
        case _:
            site.drip("/news/5", page("Berth 5 reopens", *story(5)), every_s=0.2, content_type=HTML)
    summary = "Harbour berth five will reopen in June after repairs, the authority said on Tuesday."
    site.route("/feed.xml", rss([Item("Berth 5 reopens", site.url("/news/5"), "g5", summary=summary)]),
               content_type=RSS, etag='"same"')  # fmt: skip
    source = _follow(archive, site.url("/feed.xml"))
    poller = _poller(archive, max_page_bytes=1_000_000, timeout_s=2)
    for attempt in range(1, MAX_ITEM_ATTEMPTS):
        polled = poller.poll(_due_now(archive, source))
        assert (polled.status, polled.new) == ("ok", 0)
        # The validators are not kept while an item waits, so the next poll reads the feed again, not a 304.
        assert archive.feeds.get(source.id).etag is None
        assert site.hits("/news/5") == attempt
    last = poller.poll(_due_now(archive, source))
    assert last.new == 1
    (article_id,) = _articles(archive)
    assert "reopen in June" in archive.store.article_text(article_id)
    assert archive.feeds.get(source.id).etag == '"same"'


def test_a_page_that_recovers_is_stored_whole(site: Site, archive: Services) -> None:
    site.fail("/news/6", 503)
    site.route("/feed.xml", rss([Item("Berth 6 reopens", site.url("/news/6"), "g6", summary="Berth six reopens.")]),
               content_type=RSS)  # fmt: skip
    source = _follow(archive, site.url("/feed.xml"))
    poller = _poller(archive)
    assert poller.poll(source).new == 0
    site.route("/news/6", page("Berth 6 reopens", *story(6)), content_type=HTML)
    assert poller.poll(_due_now(archive, source)).new == 1
    (article_id,) = _articles(archive)
    assert "night shifts" in archive.store.article_text(article_id)


def test_a_news_sitemap_index_brings_its_pages(site: Site, archive: Services) -> None:
    for n in (11, 12, 13):
        site.route(f"/news/{n}", page(f"Berth {n} works", *story(n), site_name="Page Name"), content_type=HTML)
    first = [Item(f"Berth {n} works", site.url(f"/news/{n}"), date="2024-05-03T08:00:00Z") for n in (11, 12)]
    site.route("/sitemap-1.xml", news_sitemap(first, publication="Harbor Post"), content_type=XML)
    site.route("/sitemap-2.xml", news_sitemap([Item("Berth 13 works", site.url("/news/13"))]), content_type=XML)
    site.route(
        "/sitemap.xml", sitemap_index([site.url("/sitemap-1.xml"), site.url("/sitemap-2.xml")]), content_type=XML
    )
    polled = _poller(archive).poll(_follow(archive, site.url("/sitemap.xml")))
    assert (polled.status, polled.kind, polled.new) == ("ok", "sitemap_index", 3)
    records = archive.registry.get(list(_articles(archive))).values()
    assert {r.source for r in records} == {"Harbor Post"}  # the sitemap's publication name
    assert sorted(r.title for r in records) == ["Berth 11 works", "Berth 12 works", "Berth 13 works"]


def test_a_server_follows_a_source_added_over_http(site: Site, archive: Services) -> None:
    items = [Item(f"Berth {n} works", site.url(f"/news/{n}"), f"g{n}", content="".join(f"<p>{p}</p>" for p in story(n)))
             for n in (1, 2)]  # fmt: skip
    site.route("/feed.xml", rss(items), content_type=RSS)
    with ServerThread(archive, tasks=follow_tasks(archive)) as server:
        added = httpx.post(f"{server.url}/feeds", json={"url": site.url("/feed.xml")}, timeout=30)
        assert added.status_code == 201, added.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            health = httpx.get(f"{server.url}/feeds", timeout=30).json()["feeds"][0]["health"]
            if health["status"] != "pending":
                break
            time.sleep(0.3)
        assert (health["status"], health["new_articles"]) == ("ok", 2), health
        listed = httpx.get(f"{server.url}/articles", timeout=30).json()
        assert listed["total"] == 2
