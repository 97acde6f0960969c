"""``kill -9`` of ``byline ingest`` at random moments, each followed by a re-run: the archive ends with
exactly the articles and chunks of a clean run, every SQLite store intact, both indexes in agreement.

After every kill, before the re-run, nothing half-written is visible: each article with chunks in Chroma
has all of them (one upsert per batch), and the registry lists no article whose chunks are missing.
(``tests/ingest/test_ingest_runs.py`` has the small synthetic version; this one runs the real corpus.)
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import registry_rows
from tests.reliability.conftest import (
    BYLINE,
    ArchiveState,
    archive_state,
    assert_same_archive,
    byline,
    byline_env,
    corpus_records,
    progress,
    record_figures,
    write_jsonl,
    wrong_vectors,
)

pytestmark = pytest.mark.slow


@dataclass
class Kill:
    target_rows: int
    rows_at_kill: int
    seconds_into_run: float


def _ingest_until_killed(source: Path, data: Path, target: int, delay_s: float, batch: int) -> Kill | None:
    """Start an ingest, wait until the registry holds ``target`` articles, then ``delay_s`` more (into the
    next batch: embedding, the Chroma upsert, the BM25 update or the registry write), then SIGKILL it.
    None when the run finished first."""
    env = byline_env(data, BYLINE_INGEST__BATCH_ARTICLES=str(batch))
    started = time.monotonic()
    process = subprocess.Popen(
        [*BYLINE, "ingest", "-q", str(source)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    registry = data / "articles.sqlite3"
    try:
        while process.poll() is None and registry_rows(registry) < target:
            time.sleep(0.05)
        time.sleep(delay_s)
        if process.poll() is not None:
            return None
        process.send_signal(signal.SIGKILL)
        process.wait()
        return Kill(target, registry_rows(registry), round(time.monotonic() - started, 1))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _chunks_by_article(state: ArchiveState) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for chunk_id, (article_id, *_) in state.chunks.items():
        found.setdefault(article_id, set()).add(chunk_id)
    return found


def _assert_nothing_half_written(state: ArchiveState, clean: dict[str, set[str]]) -> None:
    """A killed run may leave a batch in Chroma that the registry does not list yet (the re-run records it),
    and the BM25 index a batch behind; never part of an article, never a listed article without its chunks."""
    assert set(state.integrity.values()) == {"ok"}, state.integrity
    stored = _chunks_by_article(state)
    partial = {a: (len(ids), len(clean.get(a, set()))) for a, ids in stored.items() if ids != clean.get(a)}
    assert not partial, f"articles stored in part: {sorted(partial.items())[:5]}"
    missing = [a for a in state.articles if stored.get(a) != clean.get(a)]
    assert not missing, f"the registry lists articles whose chunks are missing: {missing[:5]}"


def _crash_and_rerun(tmp_path: Path, articles: int, kills: int, batch: int, max_chars: int | None, seed: int) -> None:
    source = write_jsonl(tmp_path / "articles.jsonl", corpus_records(articles, max_chars=max_chars))
    rng = random.Random(seed)

    progress(f"clean run: {articles} articles of the shared corpus, batches of {batch}")
    started = time.monotonic()
    clean_dir = tmp_path / "clean"
    done = byline(["ingest", "-q", str(source)], clean_dir, BYLINE_INGEST__BATCH_ARTICLES=str(batch))
    assert done.returncode == 0, done.stderr[-3000:]
    clean_seconds = time.monotonic() - started
    clean = archive_state(clean_dir)
    clean_chunks = _chunks_by_article(clean)
    stored = len(clean.articles)
    progress(f"clean run: {stored} articles, {len(clean.chunks)} chunks in {clean_seconds:.0f} s")

    # Kill points spread over the run: after a random number of stored articles, then a random part of a batch.
    per_batch_s = clean_seconds / max(1, -(-stored // batch))
    targets = sorted(rng.sample(range(1, stored - batch), kills))
    crashed = tmp_path / "crashed"
    record: list[Kill] = []
    disagreements = 0
    for number, planned in enumerate(targets, start=1):
        # Past what earlier runs stored, so that this run has written a batch of its own when it dies.
        target = max(planned, registry_rows(crashed / "articles.sqlite3") + 1)
        kill = _ingest_until_killed(source, crashed, target, rng.uniform(0.0, per_batch_s), batch)
        assert kill is not None, f"kill {number}: the run finished before it could be killed"
        record.append(kill)
        state = archive_state(crashed)
        _assert_nothing_half_written(state, clean_chunks)
        disagreements += state.lexical != set(state.chunks)
        progress(
            f"kill {number}/{kills} at {kill.rows_at_kill} registered articles, {kill.seconds_into_run} s into the run:"
            f" {len(state.chunks)} chunks in Chroma, {len(state.lexical)} in BM25; nothing half-written"
        )
    assert any(0 < k.rows_at_kill < stored for k in record), record  # killed mid-run, not before or after

    progress("final re-run")
    rerun = byline(["ingest", "-q", str(source)], crashed, BYLINE_INGEST__BATCH_ARTICLES=str(batch))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    final = archive_state(crashed)
    assert_same_archive(final, clean)
    again = byline(["ingest", "-q", str(source)], crashed, BYLINE_INGEST__BATCH_ARTICLES=str(batch))
    assert "0 new, 0 updated" in again.stdout and "0 texts embedded" in again.stdout, again.stdout

    record_figures(
        f"ingest_crash_{articles}_articles",
        {
            "articles_in_source": articles,
            "articles_stored": stored,
            "chunks": len(clean.chunks),
            "batch_articles": batch,
            "kills": [vars(k) for k in record],
            "kills_leaving_bm25_behind_chroma": disagreements,
            "clean_run_s": round(clean_seconds, 1),
            "lost_articles": len(set(clean.articles) - set(final.articles)),
            "lost_chunks": len(set(clean.chunks) - set(final.chunks)),
            "extra_chunks": len(set(final.chunks) - set(clean.chunks)),
            "sqlite_integrity": final.integrity,
            "chunks_whose_vector_differs_from_the_clean_run": len(wrong_vectors(final, clean)),
        },
    )


def test_kill_9_twice_during_an_ingest_of_real_articles_then_rerun(tmp_path: Path) -> None:
    _crash_and_rerun(tmp_path, articles=60, kills=2, batch=6, max_chars=1500, seed=10)


@pytest.mark.soak
def test_kill_9_five_times_during_a_1000_article_ingest_then_rerun(tmp_path: Path) -> None:
    _crash_and_rerun(tmp_path, articles=1000, kills=5, batch=32, max_chars=None, seed=1000)
