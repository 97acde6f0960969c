"""The reliability suite's helpers: the shared corpus, processes run as users run them, and the checks
every fault test ends with (every SQLite store intact, both indexes agree, the registry lists only
whole articles).

The long variants carry the ``soak`` marker and run only with ``BYLINE_SOAK=1`` (``make soak``); their
figures are written to ``reports/reliability/`` and printed, for the "Reliability" section of docs/operations.md.
"""

from __future__ import annotations

import json
import lzma
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import DEMO, ROOT, SHARED, free_port, wait_until_up

CORPUS = SHARED / "data" / "rtqa2023" / "articles.jsonl.xz"
BYLINE = [sys.executable, "-m", "byline"]
REPORTS = ROOT / "reports" / "reliability"
SOAK = os.environ.get("BYLINE_SOAK") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: the long reliability runs (make soak, BYLINE_SOAK=1)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="a soak run: make soak (BYLINE_SOAK=1) runs it")
    for item in items:
        if "soak" in item.keywords and not SOAK:
            item.add_marker(skip)


def corpus_records(count: int, max_chars: int | None = None, skip: int = 0) -> list[dict[str, Any]]:
    """The first ``count`` articles of the shared research corpus (after ``skip``), texts optionally cut
    at a paragraph end; the test is skipped, saying why, where the corpus is absent."""
    if not CORPUS.exists():
        pytest.skip(f"the shared research corpus is absent ({CORPUS}); these runs read real articles from it")
    records: list[dict[str, Any]] = []
    with lzma.open(CORPUS, "rt", encoding="utf-8") as fh:
        for index, line in enumerate(fh):
            if index < skip:
                continue
            if len(records) >= count:
                break
            record = json.loads(line)
            if max_chars is not None and len(record["text"]) > max_chars:
                cut = record["text"].rfind("\n\n", 0, max_chars)
                record["text"] = record["text"][: cut if cut > 0 else max_chars]
            records.append(record)
    return records


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def byline_env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "BYLINE_DATA_DIR": str(data_dir),
        "BYLINE_API__RATE_PER_MINUTE": "0",
        **extra,
    }


def byline(args: list[str], data_dir: Path, timeout: float = 1800, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BYLINE, *args],
        env=byline_env(data_dir, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def progress(message: str) -> None:
    """Long runs say what they are doing (visible with ``-s``, as ``make soak`` runs them)."""
    sys.stderr.write(f"[reliability {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def record_figures(name: str, figures: dict[str, Any]) -> None:
    """Keep a run's figures (what was tried, how often, what was lost) for docs/operations.md."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    figures = {"recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S"), **figures}
    (REPORTS / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")
    progress(f"{name}: {json.dumps(figures, default=str)}")


# --- the state of an archive, and the checks every fault test ends with -----------------------


@dataclass(frozen=True)
class ArchiveState:
    """What an archive holds, read straight from its files."""

    chunks: dict[str, tuple[str, int, str, str]]  # chunk id -> article id, position, story cluster, text
    lexical: set[str]
    articles: dict[str, tuple[str, str, int]]  # article id -> content hash, cluster id, chunk count
    copies: dict[str, str]  # copy id -> article id
    integrity: dict[str, str]
    fingerprints: dict[str, list[float]]  # chunk id -> its stored vector projected on 8 fixed directions


def archive_state(data_dir: Path) -> ArchiveState:
    """Read an embedded archive in a process of its own: Chroma caches what it opened per process, and
    the archive is written by other processes between two looks."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.reliability.state", str(data_dir)],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT, env=byline_env(data_dir),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    raw = json.loads(result.stdout)
    return ArchiveState(
        chunks={k: (v[0], v[1], v[2], v[3]) for k, v in raw["chunks"].items()},
        lexical=set(raw["lexical"]),
        articles={k: (v[0], v[1], v[2]) for k, v in raw["articles"].items()},
        copies=raw["copies"],
        integrity=raw["integrity"],
        fingerprints=raw["fingerprints"],
    )


def assert_consistent(state: ArchiveState) -> None:
    """Every store intact, both indexes hold the same chunks, the registry lists only whole articles
    and every stored chunk belongs to a listed article, no article position stored twice."""
    assert state.integrity and set(state.integrity.values()) == {"ok"}, state.integrity
    assert state.lexical == set(state.chunks), (
        f"lexical and vector indexes disagree: {len(state.lexical - set(state.chunks))} only in BM25,"
        f" {len(set(state.chunks) - state.lexical)} only in Chroma"
    )
    per_article: dict[str, int] = {}
    for article_id, *_ in state.chunks.values():
        per_article[article_id] = per_article.get(article_id, 0) + 1
    positions = [(a, p) for a, p, *_ in state.chunks.values()]
    assert len(positions) == len(set(positions)), "an article position is stored twice"
    incomplete = {
        a: (n, per_article.get(a, 0)) for a, (_, _, n) in state.articles.items() if per_article.get(a, 0) != n
    }
    assert not incomplete, f"the registry lists articles whose chunks are missing: {sorted(incomplete.items())[:5]}"
    orphans = set(per_article) - set(state.articles)
    assert not orphans, f"chunks of articles the registry does not list: {sorted(orphans)[:5]}"


def assert_same_archive(got: ArchiveState, clean: ArchiveState) -> None:
    assert_consistent(got)
    assert got.articles.keys() == clean.articles.keys(), "not the articles of a clean run"
    assert got.articles == clean.articles, "content hashes, story clusters or chunk counts differ from a clean run"
    assert got.chunks == clean.chunks, "not the chunks of a clean run"
    assert got.copies == clean.copies
    assert wrong_vectors(got, clean) == [], "stored vectors differ from a clean run's"


def wrong_vectors(got: ArchiveState, clean: ArchiveState) -> list[str]:
    """Chunks whose stored vector is not the clean run's (beyond the last digits a batch can change)."""
    return sorted(
        c
        for c, fp in got.fingerprints.items()
        if c not in clean.fingerprints or not np.allclose(fp, clean.fingerprints[c], atol=1e-3)
    )


class ServeProcess:
    """``byline serve`` over ``data`` as a subprocess on a free loopback port, as a user runs it."""

    def __init__(
        self, data: Path, log: Path, preexec_fn: Callable[[], None] | None = None, port: int | None = None, **env: str
    ) -> None:
        self.data, self.log = data, log
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                [*BYLINE, "serve", "--port", str(self.port)], env=byline_env(data, **env),
                stdout=sink, stderr=subprocess.STDOUT, preexec_fn=preexec_fn,
            )  # fmt: skip
        self.wait_ready()

    def wait_ready(self, timeout_s: float = 120) -> None:
        wait_until_up(self.process, f"{self.url}/health", self.log, "byline serve", timeout_s)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo archive ingested once by ``byline ingest``; tests copy it (``copy_archive``), never write it."""
    data = tmp_path_factory.mktemp("demo-archive") / "data"
    result = byline(["ingest", "-q", str(DEMO)], data, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return data


def copy_archive(source: Path, target: Path) -> Path:
    """A copy of an archive no process has open (the ingest that wrote it has exited)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".*.lock"))
    return target


@pytest.fixture
def demo_copy(demo_archive: Path, tmp_path: Path) -> Iterator[Path]:
    yield copy_archive(demo_archive, tmp_path / "data")
