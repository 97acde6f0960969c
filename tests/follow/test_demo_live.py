"""`make demo-live` as a newcomer sees it: the demo site publishes its articles one by one, a server follows
its feed (summaries only, so every page is fetched), the articles arrive and the saved question fires once,
on the article that answers it."""

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backend.embedding import SentenceTransformerEmbedder
from backend.services import Services, build_services, start_watching
from backend.settings import ApiSettings, Settings
from byline.server import follow_tasks
from demo.live import ARTICLES, QUESTION, Site, register, serve
from ingest.pipeline import Ingestor
from ingest.writer import with_writer
from tests.conftest import DEMO, ServerThread, free_port, wait_for
from tests.follow.test_poller import FOLLOW

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def live_services(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> Iterator[Services]:
    """A server's services as `byline serve` builds them: the demo archive, a writer that tells the watches."""
    settings = Settings(data_dir=tmp_path / "data", api=ApiSettings(rate_per_minute=0), follow=FOLLOW)
    services = start_watching(build_services(settings, embedder))
    assert services.watching is not None
    services = with_writer(services, on_stored=services.watching.runner.notify)
    report = Ingestor(settings, embedder, services.store, services.registry, services.lexical).ingest([DEMO])
    assert not report.errors
    yield services
    services.close()


def test_the_live_demo_brings_its_articles_and_fires_the_watch_on_the_answer(live_services: Services) -> None:
    articles = [json.loads(line) for line in ARTICLES.read_text(encoding="utf-8").splitlines()]
    port = free_port()
    site = Site(articles, f"http://127.0.0.1:{port}")
    demo_site = serve(site, port)
    try:
        with ServerThread(live_services, tasks=follow_tasks(live_services)) as server:
            register(server.url, None, f"http://127.0.0.1:{port}/feed.xml", every=2.0)
            watches = httpx.get(f"{server.url}/watches", timeout=30).json()["watches"]
            assert [w["question"] for w in watches] == [QUESTION]
            watch_id = watches[0]["id"]
            for published, article in enumerate(articles, start=1):
                assert site.publish_next() == article
                wait_for(
                    f"article {published} to arrive",
                    lambda n=published: (
                        httpx.get(f"{server.url}/feeds", timeout=30).json()["feeds"][0]["health"]["total_articles"] >= n
                    ),
                    limit_s=120.0,
                )
            listed = httpx.get(f"{server.url}/articles", params={"limit": 100}, timeout=30).json()
            assert listed["total"] == 24 + len(articles)
            by_title = {a["title"]: a for a in listed["articles"]}
            for article in articles:  # each with its page's outlet and date, not the feed's
                stored = by_title[article["title"]]
                assert stored["source"] == article["source"]
                assert stored["published_at"].startswith(article["published_at"][:10])

            def events_now() -> list[dict[str, object]]:
                events = httpx.get(f"{server.url}/watches/{watch_id}/events", timeout=30).json()["events"]
                return events if events and live_services.watches.pending() == 0 else []

            wait_for("the watch to fire", lambda: bool(events_now()), limit_s=120.0)
            events = events_now()
            # The first Tuz Khurmatu article names the new head; the second one repeats it (no second event
            # would be wrong either, but the answer must be the new head, cited to a new article).
            assert events, "no event"
            for event in events:
                answer = event["answer"]
                assert isinstance(answer, dict) and answer["short_answer"]["text"].endswith("Al-Obeidi")
                assert event["article"]["title"] in {a["title"] for a in articles if "Tuz Khurmatu" in a["title"]}
    finally:
        demo_site.shutdown()
