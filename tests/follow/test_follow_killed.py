"""``kill -9`` of a poller during polling, then a restart: exactly the articles of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.embedding import SentenceTransformerEmbedder
from backend.services import build_lexical, build_registry, build_services, build_store
from backend.settings import ApiSettings, Settings
from backend.store.feeds import FeedStore
from ingest.follow.poller import Poller
from ingest.writer import with_writer
from tests.follow.servers import HTML, RSS, Item, Site, rss
from tests.follow.test_poller import FOLLOW, page, story

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ENTRIES = 40  # summary-only: each page is fetched, and the poller writes them 16 at a time


def _site(site: Site) -> None:
    items = []
    for n in range(1, ENTRIES + 1):
        site.route(f"/news/{n}", page(f"Berth {n} works", *story(n)), content_type=HTML)
        items.append(Item(f"Berth {n} works", site.url(f"/news/{n}"), f"g{n}", summary=f"Berth {n} works."))
    site.route("/feed.xml", rss(items), content_type=RSS, etag='"v1"')


def _state(data_dir: Path) -> tuple[dict[str, tuple[str, int]], set[str], int]:
    """Stored article -> (content hash, chunks); every chunk id in the vector store; the lexical index's count."""
    settings = Settings(data_dir=data_dir)
    registry, store = build_registry(settings), build_store(settings)
    _, records = registry.listing(ENTRIES * 2, 0, None, None)
    articles = {r.id: (r.content_hash, r.chunks) for r in registry.get([r.id for r in records]).values()}
    chunks = {c.id for c in store.iter_chunks()}
    return articles, chunks, build_lexical(settings).count()


def _page_hits(site: Site) -> int:
    return sum(site.hits(f"/news/{n}") for n in range(1, ENTRIES + 1))


def test_a_poller_killed_twice_then_restarted_stores_what_an_uninterrupted_one_does(
    tmp_path: Path, site: Site, embedder: SentenceTransformerEmbedder
) -> None:
    _site(site)
    # The run that is not interrupted, in this process.
    calm = Settings(data_dir=tmp_path / "calm", api=ApiSettings(rate_per_minute=0), follow=FOLLOW)
    services = with_writer(build_services(calm, embedder))
    assert services.writer is not None
    source = services.feeds.add(site.url("/feed.xml"))
    assert Poller(FOLLOW, services.feeds, services.writer).poll(source).new == ENTRIES
    services.close()
    expected = _state(calm.data_dir)
    assert len(expected[0]) == ENTRIES

    # The same source followed by `byline follow`, killed while it works, twice.
    data = tmp_path / "killed"
    FeedStore(Settings(data_dir=data).feeds_db).add(site.url("/feed.xml"))
    env = {
        **os.environ,
        "BYLINE_DATA_DIR": str(data),
        "BYLINE_FOLLOW__ALLOW_NETWORKS": "127.0.0.0/8",
        "BYLINE_FOLLOW__HOST_INTERVAL_S": "0",
        "BYLINE_FOLLOW__MIN_INTERVAL_S": "0",
    }
    served_before = _page_hits(site)
    stored: list[int] = []
    for kill_after in (18, 34):  # inside the first write (16 pages read), then inside the third batch's reading
        follower = subprocess.Popen(
            [sys.executable, "-m", "byline", "follow"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 240
        while _page_hits(site) - served_before < kill_after:
            assert follower.poll() is None, "the poller ended before it was killed"
            assert time.monotonic() < deadline, "the poller did not fetch the pages"
            time.sleep(0.02)
        os.kill(follower.pid, signal.SIGKILL)
        follower.wait(timeout=30)
        assert follower.returncode == -signal.SIGKILL
        stored.append(build_registry(Settings(data_dir=data)).count())  # SQLite: no Chroma client in this process yet
    # Killed part-way: the restart had articles left to store.
    assert stored[-1] < ENTRIES, stored

    done = subprocess.run(
        [sys.executable, "-m", "byline", "follow", "--once"], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert _state(data) == expected
    taken = FeedStore(Settings(data_dir=data).feeds_db).items()
    assert len(taken) == ENTRIES and all(row[1] is not None for row in taken)
