"""Chroma http mode against a real `chroma run`: ingest, /search and /ask, an ingest running while
questions are asked, several API workers, a Chroma server that stops and comes back, and a reindex that
swaps the vectors under a running API."""

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backend.core.types import SearchQuery
from backend.embedding import SentenceTransformerEmbedder
from backend.services import Services, build_services
from backend.settings import ApiSettings, ChromaSettings, EmbeddingSettings, Settings
from backend.store.ownership import hold_for_server
from ingest.pipeline import Ingestor
from ingest.reindex import ReindexReport, reindex
from tests.conftest import DEMO, QARATAPA_ID, QARATAPA_QUESTION, ChromaServer, ServerThread, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    with ChromaServer(tmp_path_factory.mktemp("chroma-server") / "chroma") as server:
        yield server


def _settings(chroma: ChromaServer, data_dir: Path, collection: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        chroma=ChromaSettings(mode="http", port=chroma.port, collection=collection),
        api=ApiSettings(rate_per_minute=0),
    )


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "BYLINE_DATA_DIR": str(settings.data_dir),
        "BYLINE_CHROMA__MODE": "http",
        "BYLINE_CHROMA__PORT": str(settings.chroma.port),
        "BYLINE_CHROMA__COLLECTION": settings.chroma.collection,
        "BYLINE_API__RATE_PER_MINUTE": "0",
    }


def _byline(args: list[str], settings: Settings) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "byline", *args]
    return subprocess.run(command, capture_output=True, text=True, env=_env(settings), timeout=600, check=False)


def _synthetic(path: Path, count: int) -> Path:
    """Articles that exist only for this test, each with a token no other text has."""
    lines = []
    for i in range(count):
        text = (
            f"Harbour officials in Port Veyra logged cargo manifest {i} on day {i % 28 + 1}. "
            f"The inspector, known by the call sign zorblax{i}, said the shipment of {i * 7} crates "
            f"of citrus cleared customs after a {i % 5 + 1}-hour check."
        )
        record = {"id": f"syn-{i}", "title": f"Manifest {i} cleared at Port Veyra", "text": text,
                  "source": "Veyra Gazette", "published_at": f"2024-02-{i % 28 + 1:02d}"}  # fmt: skip
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_ingest_search_and_ask_through_a_chroma_server(
    chroma: ChromaServer, tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    settings = _settings(chroma, tmp_path / "data", "http_demo")
    ingest = _byline(["ingest", "--quiet", str(DEMO)], settings)
    assert ingest.returncode == 0, ingest.stderr
    assert not (settings.data_dir / "chroma").exists()  # the vectors live in the server, not here
    with ServerThread(build_services(settings, embedder)) as server:
        results = httpx.post(f"{server.url}/search", json={"query": QARATAPA_QUESTION}, timeout=30).json()
        assert results["results"][0]["article_id"] == QARATAPA_ID
        answer = httpx.post(f"{server.url}/ask", json={"question": QARATAPA_QUESTION}, timeout=60).json()
        assert "Mardan Salih" in answer["answer"] and answer["citations"][0]["article_id"] == QARATAPA_ID


def test_an_ingest_runs_while_questions_are_asked_and_its_articles_appear(
    chroma: ChromaServer, tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    settings = _settings(chroma, tmp_path / "data", "http_live")
    assert _byline(["ingest", "--quiet", str(DEMO)], settings).returncode == 0
    extra = _synthetic(tmp_path / "more.jsonl", 400)
    services: Services = build_services(settings, embedder)
    statuses: list[int] = []
    cited: set[str] = set()
    with ServerThread(services) as server:
        ingest = subprocess.Popen(
            [sys.executable, "-m", "byline", "ingest", "--quiet", str(extra)],
            env=_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        while ingest.poll() is None:
            ask = httpx.post(f"{server.url}/ask", json={"question": "Which inspector cleared the citrus?"}, timeout=60)
            search = httpx.post(f"{server.url}/search", json={"query": QARATAPA_QUESTION, "k": 3}, timeout=60)
            statuses += [ask.status_code, search.status_code]
            cited |= {c["article_id"] for c in ask.json().get("citations", [])}
            assert search.json()["results"][0]["article_id"] == QARATAPA_ID
        out, err = ingest.communicate()
        assert ingest.returncode == 0, err
        assert len(statuses) >= 4 and set(statuses) == {200}, statuses
        # Every cited article is complete in the registry: nothing half-ingested was cited.
        complete = services.registry.ids()
        assert cited <= complete
        # After the ingest, the API process sees the new articles' vectors (in the server) and words (its
        # in-memory BM25 reloads when the ingest publishes a new version).
        assert services.lexical.search(SearchQuery("zorblax399"), 1)[0][0].startswith("syn-399:")
        found = httpx.post(f"{server.url}/search", json={"query": "Port Veyra citrus manifest", "k": 50}, timeout=30)
        assert len({r["article_id"] for r in found.json()["results"] if r["article_id"].startswith("syn-")}) >= 20
    assert "400 new" in out


def test_several_workers_share_one_chroma_server(chroma: ChromaServer, tmp_path: Path) -> None:
    settings = _settings(chroma, tmp_path / "data", "http_workers")
    assert _byline(["ingest", "--quiet", str(DEMO)], settings).returncode == 0
    port = free_port()
    command = [sys.executable, "-m", "byline", "serve", "--port", str(port), "--workers", "2"]
    server = subprocess.Popen(command, env=_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (server.stderr.read() if server.stderr else b"").decode()[-2000:]
            assert time.monotonic() < deadline, "byline serve --workers 2 did not start"
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        fresh = {"id": "w-1", "title": "Ferry timetable changes", "text": "The Port Veyra ferry now leaves at 06:40 "
                 "on weekdays, the operator Calla Marsh announced.", "source": "Veyra Gazette"}  # fmt: skip
        results: list[int] = []

        def ask() -> None:
            reply = httpx.post(f"{url}/ask", json={"question": QARATAPA_QUESTION}, timeout=120)
            results.append(reply.status_code if "Mardan Salih" in reply.text else -reply.status_code)

        threads = [threading.Thread(target=ask) for _ in range(6)]
        for t in threads:
            t.start()
        posted = httpx.post(f"{url}/articles", json={"articles": [fresh]}, timeout=120)
        for t in threads:
            t.join()
        assert results == [200] * 6 and posted.json()["results"][0]["status"] == "new"
        # Whichever worker answers sees the article another worker wrote.
        for _ in range(4):
            hit = httpx.post(f"{url}/search", json={"query": "Calla Marsh ferry", "k": 1}, timeout=30).json()
            assert hit["results"][0]["article_id"] == "w-1"
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_a_chroma_server_that_stops_gives_503_then_recovers(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    chroma = ChromaServer(tmp_path / "chroma")
    chroma.start()
    try:
        settings = _settings(chroma, tmp_path / "data", "http_faults")
        assert _byline(["ingest", "--quiet", str(DEMO)], settings).returncode == 0
        with ServerThread(build_services(settings, embedder)) as server:
            body = {"query": QARATAPA_QUESTION}
            assert httpx.post(f"{server.url}/search", json=body, timeout=30).status_code == 200
            chroma.stop()
            down = httpx.post(f"{server.url}/search", json=body, timeout=30)
            assert down.status_code == 503 and down.headers["content-type"] == "application/problem+json"
            assert "Chroma" in down.json()["detail"] and "retry-after" in down.headers
            asked = httpx.post(f"{server.url}/ask", json={"question": QARATAPA_QUESTION}, timeout=30)
            assert asked.status_code == 503
            ready = httpx.get(f"{server.url}/ready", timeout=30)
            assert ready.status_code == 503 and "store" in ready.json()["detail"]
            assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200
            chroma.start()
            back = httpx.post(f"{server.url}/search", json=body, timeout=30)
            assert back.status_code == 200 and back.json()["results"][0]["article_id"] == QARATAPA_ID
            assert httpx.get(f"{server.url}/ready", timeout=30).status_code == 200
    finally:
        chroma.stop()


def test_a_command_refuses_an_embedded_directory_a_server_has_open(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    mark = hold_for_server(settings.data_dir)
    try:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "BYLINE_DATA_DIR": str(settings.data_dir)}
        result = subprocess.run(
            [sys.executable, "-m", "byline", "ingest", str(DEMO)], capture_output=True, text=True, env=env, timeout=300
        )
        assert (
            result.returncode == 2 and "POST /articles" in result.stderr and "BYLINE_CHROMA__MODE=http" in result.stderr
        )
        assert not (settings.data_dir / "chroma").exists()  # refused before opening anything
    finally:
        mark.close()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BYLINE_DATA_DIR": str(settings.data_dir)}
    workers = subprocess.run(
        [sys.executable, "-m", "byline", "serve", "--workers", "2"], capture_output=True, text=True, env=env, timeout=60
    )
    assert workers.returncode == 2 and "BYLINE_CHROMA__MODE=http" in workers.stderr


def test_a_reindex_serves_the_old_vectors_until_its_swap_and_then_the_old_server_refuses(
    chroma: ChromaServer,
    tmp_path: Path,
    embedder: SentenceTransformerEmbedder,
    other_embedder: SentenceTransformerEmbedder,
) -> None:
    settings = _settings(chroma, tmp_path / "data", "http_reindex")
    services = build_services(settings, embedder)
    Ingestor(settings, embedder, services.store, services.registry).ingest([DEMO])
    switched = settings.model_copy(update={"embedding": EmbeddingSettings(model=other_embedder.identity().model)})

    def search(url: str) -> httpx.Response:
        return httpx.post(f"{url}/search", json={"query": QARATAPA_QUESTION}, timeout=30)

    with ServerThread(services) as server:  # the API with the old model, through the whole reindex
        during: list[httpx.Response] = []

        def ask_meanwhile(report: ReindexReport) -> None:
            if not during:
                during.append(search(server.url))

        assert reindex(switched, other_embedder, ask_meanwhile, batch_size=8).swapped
        assert during[0].status_code == 200 and during[0].json()["results"][0]["article_id"] == QARATAPA_ID
        after = search(server.url)
        assert after.status_code == 503 and "byline reindex" in after.json()["detail"]
    with ServerThread(build_services(switched, other_embedder)) as server:
        assert search(server.url).json()["results"][0]["article_id"] == QARATAPA_ID
