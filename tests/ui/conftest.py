"""Servers for the UI tests: a writable API over the demo archive plus one hostile article.

The hostile article carries an HTML tag with a script handler and a Markdown image to a remote
host in its title and in the sentence that answers HOSTILE_QUESTION, so the chat has to show both
as text and the browser must never fetch the image.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from streamlit.testing.v1 import AppTest

from backend.embedding import SentenceTransformerEmbedder
from backend.services import Services, build_services, start_watching
from backend.settings import ApiSettings, FollowSettings, Settings
from byline.server import follow_tasks
from ingest.pipeline import Ingestor
from ingest.writer import with_writer
from tests.backend.api.short_answers import ShortAnswerer, answering_with
from tests.conftest import DEMO, ServerThread
from tests.conftest import wait_for as wait_for

APP = str(Path(__file__).resolve().parents[2] / "ui" / "app.py")
# A character Markdown or HTML would act on, not escaped by a backslash.
UNESCAPED = re.compile(r"(?<!\\)[<>!\[\]()]")

HOSTILE_ID = "hostile-001"
HOSTILE_TAG = "<img src=x onerror=\"document.title='pwned'\">"
HOSTILE_IMAGE = "![chart](http://remote.example/x.png)"
HOSTILE_QUESTION = "Who chairs the Pemba clove growers cooperative?"
HOSTILE = {
    "id": HOSTILE_ID,
    "url": "javascript:alert(1)",
    "title": f"Clove harvest falls {HOSTILE_TAG} {HOSTILE_IMAGE}",
    "source": "Spice Wire",
    "published_at": "2023-11-02",
    "text": (
        "The clove harvest on Pemba island fell by a third this season, growers said.\n\n"
        f"Salim Juma, who chairs the Pemba clove growers cooperative {HOSTILE_TAG}, said the long rains "
        f"had rotted the buds before they could be dried {HOSTILE_IMAGE}.\n\n"
        "Exporters expect prices to rise before the end of the year."
    ),
}


def writable_services(
    data_dir: Path,
    embedder: SentenceTransformerEmbedder,
    *,
    api_keys: str = "",
    admin_keys: str = "",
    rate: ApiSettings | None = None,
) -> Services:
    """A server's services that accept uploads; no rate limit unless the test sets one."""
    config = Settings(
        data_dir=data_dir,
        api=rate or ApiSettings(rate_per_minute=0),
        api_keys=SecretStr(api_keys),
        admin_keys=SecretStr(admin_keys),
    )
    return with_writer(build_services(config, embedder))


def live_services(data_dir: Path, embedder: SentenceTransformerEmbedder, *, admin_keys: str = "") -> Services:
    """A server's services that check saved questions against every stored article and may follow loopback
    sources (the test sites), polled at once and as often as a test needs."""
    config = Settings(
        data_dir=data_dir,
        api=ApiSettings(rate_per_minute=0),
        admin_keys=SecretStr(admin_keys),
        follow=FollowSettings(allow_networks="127.0.0.0/8", host_interval_s=0, min_interval_s=0, timeout_s=5),
    )
    services = start_watching(build_services(config, embedder))
    assert services.watching is not None
    return with_writer(services, on_stored=services.watching.runner.notify)


@pytest.fixture
def live_api(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> Iterator[tuple[str, Services]]:
    """A writable server over an empty archive that checks saved questions and polls followed sources."""
    services = live_services(tmp_path / "data", embedder)
    try:
        with ServerThread(services, tasks=follow_tasks(services)) as server:
            yield server.url, services
    finally:
        services.close()


@pytest.fixture(scope="session")
def ui_services(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> Services:
    root = tmp_path_factory.mktemp("ui")
    hostile = root / "hostile.jsonl"
    hostile.write_text(json.dumps(HOSTILE) + "\n", encoding="utf-8")
    services = writable_services(root / "data", embedder)
    ingestor = Ingestor(services.settings, embedder, services.store, services.registry, services.lexical)
    report = ingestor.ingest([DEMO, hostile])
    assert not report.errors, report.summary()
    return services


@pytest.fixture(scope="session")
def ui_api(ui_services: Services) -> Iterator[str]:
    """The API the chat tests talk to; they may ask, give feedback and open conversations, not ingest."""
    with ServerThread(ui_services) as server:
        yield server.url


@pytest.fixture(scope="session")
def short_api(ui_services: Services) -> Iterator[str]:
    """The chat's archive answered with a short answer: "Nordstrom", 80% sure, two outlets, citation 2."""
    with ServerThread(answering_with(ui_services, ShortAnswerer())) as server:
        yield server.url


@pytest.fixture(scope="session")
def unsure_api(ui_services: Services) -> Iterator[str]:
    """As ``short_api``, with a short answer below the threshold (12%, one outlet): a guess."""
    with ServerThread(answering_with(ui_services, ShortAnswerer(confidence=0.12, outlets=("Outlet A",)))) as server:
        yield server.url


@pytest.fixture
def empty_api(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> Iterator[tuple[str, Services]]:
    """A writable server over an empty archive, for tests that ingest."""
    services = writable_services(tmp_path / "data", embedder)
    with ServerThread(services) as server:
        yield server.url, services


@pytest.fixture
def keyed_api(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> Iterator[str]:
    """A server that needs the key ``reader-key`` to read and ``admin-key`` to write."""
    services = writable_services(tmp_path / "data", embedder, api_keys="reader-key", admin_keys="admin-key")
    with ServerThread(services) as server:
        yield server.url


def open_app(monkeypatch: pytest.MonkeyPatch, api_url: str, api_key: str = "", page: str | None = None) -> AppTest:
    """The app run once against ``api_url`` (on ``page``, a file under ui/, when given), without an exception."""
    monkeypatch.setenv("BYLINE_API_URL", api_url)
    monkeypatch.setenv("BYLINE_API_KEY", api_key)
    app = AppTest.from_file(APP, default_timeout=120)
    app.run()
    if page is not None:
        app.switch_page(page).run()
    assert not app.exception
    return app


def texts(app: Any, kind: str = "markdown") -> list[str]:
    """The values of the elements of ``kind`` in the app or in one of its blocks (``app.sidebar``)."""
    return [str(element.value) for element in getattr(app, kind)]
