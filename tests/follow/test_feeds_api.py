"""Managing followed sources over HTTP (`/feeds`) and from the command line (`byline feeds`)."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from backend.api.app import create_app
from backend.embedding import SentenceTransformerEmbedder
from backend.services import Services, build_services
from backend.settings import ApiSettings, FollowSettings, Settings
from backend.store.feeds import Polled
from ingest.writer import with_writer

pytestmark = pytest.mark.integration


@pytest.fixture
def services(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> Iterator[Services]:
    settings = Settings(
        data_dir=tmp_path / "data",
        api=ApiSettings(rate_per_minute=0),
        api_keys=SecretStr("reader"),
        admin_keys=SecretStr("admin"),
        follow=FollowSettings(allow_networks="127.0.0.0/8"),
    )
    built = with_writer(build_services(settings, embedder))
    yield built
    built.close()


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_sources_are_added_listed_with_health_and_removed_by_an_admin(services: Services) -> None:
    client = TestClient(create_app(services))
    added = client.post(
        "/feeds",
        json={"url": "HTTP://127.0.0.1:9/feed.xml?utm_source=x", "title": "Local Wire", "interval_s": 120},
        headers=_as("admin"),
    )
    assert added.status_code == 201, added.text
    feed = added.json()
    assert feed["url"] == "http://127.0.0.1:9/feed.xml"  # canonical: one spelling, tracking dropped
    assert (feed["title"], feed["interval_s"], feed["kind"]) == ("Local Wire", 120, None)
    assert feed["health"]["status"] == "pending" and feed["health"]["last_fetch_at"] is None

    # What a poll records is what the list shows.
    source = services.feeds.get(feed["id"])
    services.feeds.record(source, Polled("error", 500, error="HTTP 500 from the server", kind="rss"), 4e9)
    listed = client.get("/feeds", headers=_as("reader")).json()["feeds"]
    assert [f["id"] for f in listed] == [feed["id"]]
    health = listed[0]["health"]
    assert (health["status"], health["http_status"], health["failures"]) == ("error", 500, 1)
    assert health["last_error"] == "HTTP 500 from the server" and health["last_fetch_at"] is not None
    assert health["next_poll_at"].startswith("2096")

    again = client.post("/feeds", json={"url": "http://127.0.0.1:9/feed.xml"}, headers=_as("admin"))
    assert again.status_code == 422 and "followed already" in again.json()["detail"]
    assert client.delete(f"/feeds/{feed['id']}", headers=_as("admin")).status_code == 204
    missing = client.delete(f"/feeds/{feed['id']}", headers=_as("admin"))
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert client.get("/feeds", headers=_as("reader")).json()["feeds"] == []


def test_writing_needs_the_admin_key_and_reading_a_key(services: Services) -> None:
    client = TestClient(create_app(services))
    assert client.get("/feeds").status_code == 401
    refused = client.post("/feeds", json={"url": "http://127.0.0.1:9/feed.xml"}, headers=_as("reader"))
    assert refused.status_code == 403
    assert services.feeds.sources() == []


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://10.1.2.3/feed.xml", "private, loopback or link-local"),
        ("http://169.254.169.254/latest/meta-data/", "private, loopback or link-local"),
        ("http://[::1]/feed.xml", "private, loopback or link-local"),  # loopback, but only 127.0.0.0/8 is allowed
        ("file:///etc/passwd", "only http and https"),
        ("http://user:secret@127.0.0.1/feed.xml", "user name or password"),
    ],
)
def test_urls_that_would_reach_inside_are_refused(services: Services, url: str, says: str) -> None:
    client = TestClient(create_app(services))
    refused = client.post("/feeds", json={"url": url}, headers=_as("admin"))
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    assert says in refused.json()["detail"]
    assert services.feeds.sources() == []


def test_the_command_line_adds_lists_and_removes_sources(tmp_path: Path) -> None:
    env = {**os.environ, "BYLINE_DATA_DIR": str(tmp_path / "data")}

    def byline(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "byline", "feeds", *args]
        return subprocess.run(command, capture_output=True, text=True, env={**env, **extra}, timeout=120, check=False)

    refused = byline("add", "http://127.0.0.1:9/feed.xml")
    assert refused.returncode == 2 and "BYLINE_FOLLOW__ALLOW_NETWORKS" in refused.stderr
    added = byline(
        "add", "http://127.0.0.1:9/feed.xml", "--title", "Local Wire", BYLINE_FOLLOW__ALLOW_NETWORKS="127.0.0.1/32"
    )
    assert added.returncode == 0, added.stderr
    listed = byline("list")
    assert listed.returncode == 0 and "pending" in listed.stdout and "http://127.0.0.1:9/feed.xml" in listed.stdout
    assert byline("remove", "http://127.0.0.1:9/feed.xml").returncode == 0
    unknown = byline("remove", "http://127.0.0.1:9/feed.xml")
    assert unknown.returncode == 2 and "no followed source" in unknown.stderr
    assert "no sources followed" in byline("list").stderr
