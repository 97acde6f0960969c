"""A disk that fills up, or a data directory that cannot be written, during an ingest: the run stops with
a clear error (no traceback), nothing half-written becomes visible (the registry lists only articles whose
chunks are all stored, no article is stored in part), and once there is room the same ingest finishes
with exactly the archive of a run that never failed.

A full disk is made three ways: a per-process file size limit (``RLIMIT_FSIZE``, works for any user), a
small tmpfs (a real ``ENOSPC``; needs mount rights), and a read-only mount (root ignores file modes).
"""

from __future__ import annotations

import os
import random
import resource
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import (
    BYLINE,
    ArchiveState,
    ServeProcess,
    archive_state,
    assert_consistent,
    assert_same_archive,
    byline_env,
    copy_archive,
    record_figures,
    write_jsonl,
)

pytestmark = pytest.mark.slow

BATCH = "8"


def _story(i: int) -> dict[str, Any]:
    rng = random.Random(i)
    text = " ".join(
        f"Officials in district {rng.randint(1, 999)} approved plan {rng.randint(1, 99_999)} on day {s} of story {i}."
        for s in range(30)
    )
    return {
        "id": f"full-{i}",
        "title": f"Story {i}",
        "text": text,
        "source": "Disk Gazette",
        "published_at": "2024-03-01",
    }


def _limited(limit_bytes: int) -> Any:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
        # Only the soft limit: the test lifts it again from outside (prlimit) to let a server recover.
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.RLIM_INFINITY))

    return apply


def _ingest(data: Path, source: Path, limit_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BYLINE, "ingest", "-q", str(source)],
        env=byline_env(data, BYLINE_INGEST__BATCH_ARTICLES=BATCH),
        capture_output=True, text=True, timeout=600, check=False,
        preexec_fn=_limited(limit_bytes) if limit_bytes else None,
    )  # fmt: skip


def _largest_file(data: Path) -> int:
    return max(p.stat().st_size for p in data.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("disk-source") / "more.jsonl", [_story(i) for i in range(64)])


@pytest.fixture(scope="module")
def clean(demo_archive: Path, source: Path, tmp_path_factory: pytest.TempPathFactory) -> ArchiveState:
    data = copy_archive(demo_archive, tmp_path_factory.mktemp("disk-clean") / "data")
    assert _ingest(data, source).returncode == 0
    return archive_state(data)


def _can_mount() -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    probe = Path("/tmp") / f"byline-mount-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        ok = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True
        ).returncode
        if ok == 0:
            subprocess.run(["umount", str(probe)], check=True)
        return ok == 0
    finally:
        probe.rmdir()


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A small filesystem of our own (root with mount rights only)."""
    if not _can_mount():
        pytest.skip("mounting a tmpfs needs root and mount rights; the RLIMIT_FSIZE variant runs everywhere")
    mount = tmp_path / "mnt"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _chunks_by_article(state: ArchiveState) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for chunk_id, (article_id, *_) in state.chunks.items():
        found.setdefault(article_id, set()).add(chunk_id)
    return found


def _assert_failed_clearly_and_nothing_half_written(
    run: subprocess.CompletedProcess[str], data: Path, clean: ArchiveState, reason: str
) -> ArchiveState:
    assert run.returncode == 1, (run.returncode, run.stderr[-2000:])
    assert f"error: cannot write the archive: {reason}" in run.stderr, run.stderr[-2000:]
    assert f"(data directory: {data})" in run.stderr
    assert "Traceback" not in run.stderr and "╭" not in run.stderr, run.stderr[-2000:]
    state = archive_state(data)
    assert set(state.integrity.values()) == {"ok"}, state.integrity
    expected, stored = _chunks_by_article(clean), _chunks_by_article(state)
    partial = [a for a, ids in stored.items() if ids != expected.get(a)]
    assert not partial, f"articles stored in part: {partial[:5]}"
    listed_without_chunks = [a for a in state.articles if stored.get(a) != expected.get(a)]
    assert not listed_without_chunks, listed_without_chunks[:5]
    return state


def test_a_file_size_limit_mid_ingest_stops_clearly_and_a_rerun_finishes(
    demo_archive: Path, source: Path, clean: ArchiveState, tmp_path: Path
) -> None:
    data = copy_archive(demo_archive, tmp_path / "data")
    limit = _largest_file(data) + 1_000_000  # room for a few batches, not for 64 articles
    failed = _ingest(data, source, limit_bytes=limit)
    state = _assert_failed_clearly_and_nothing_half_written(failed, data, clean, "a file may have reached")
    registered = len(state.articles) - 24
    assert 0 < registered < 64, registered  # it stopped part of the way, after whole batches

    rerun = _ingest(data, source)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert_same_archive(archive_state(data), clean)
    record_figures("disk_full_rlimit", {"articles_tried": 64, "registered_before_the_failure": registered,
                                        "lost_after_rerun": 0})  # fmt: skip


def test_a_full_disk_mid_ingest_stops_clearly_and_a_rerun_finishes(
    demo_archive: Path, source: Path, clean: ArchiveState, tmpfs: Path
) -> None:
    data = copy_archive(demo_archive, tmpfs / "data")
    used = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
    subprocess.run(["mount", "-o", f"remount,size={used + 1_500_000}", str(tmpfs)], check=True)
    failed = _ingest(data, source)
    # Even reading a WAL-mode SQLite file needs room for its shared-memory file: look once there is room.
    subprocess.run(["mount", "-o", "remount,size=64m", str(tmpfs)], check=True)
    state = _assert_failed_clearly_and_nothing_half_written(failed, data, clean, "the disk is full")
    rerun = _ingest(data, source)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert_same_archive(archive_state(data), clean)
    record_figures("disk_full_tmpfs", {"articles_tried": 64, "registered_before_the_failure": len(state.articles) - 24,
                                       "lost_after_rerun": 0})  # fmt: skip


def test_a_read_only_data_directory_is_refused_clearly_and_left_as_it_was(
    demo_archive: Path, source: Path, tmpfs: Path
) -> None:
    data = copy_archive(demo_archive, tmpfs / "data")
    before = archive_state(data)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    failed = _ingest(data, source)
    assert failed.returncode == 1, failed.stderr[-2000:]
    assert "error: cannot write the archive: the data directory is read-only" in failed.stderr, failed.stderr[-2000:]
    assert "Traceback" not in failed.stderr
    # `byline delete` too (it ended in a traceback before).
    removal = subprocess.run(
        [*BYLINE, "delete", "demo-001"], env=byline_env(data), capture_output=True, text=True, timeout=300, check=False
    )
    assert removal.returncode == 1, removal.stderr[-2000:]
    assert "error: cannot write the archive: the data directory is read-only" in removal.stderr, removal.stderr[-2000:]
    assert "Traceback" not in removal.stderr
    subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)  # embedded Chroma opens nothing read-only
    after = archive_state(data)
    assert after == before
    assert_consistent(after)


def _post(url: str, start: int) -> httpx.Response:
    return httpx.post(f"{url}/articles", json={"articles": [_story(i) for i in range(start, start + 8)]}, timeout=120)


def test_articles_posted_while_the_disk_is_full_get_a_503_problem_and_reads_go_on(
    demo_archive: Path, clean: ArchiveState, tmp_path: Path
) -> None:
    data = copy_archive(demo_archive, tmp_path / "data")
    log = tmp_path / "serve.log"
    server = ServeProcess(
        data, log, preexec_fn=_limited(_largest_file(data) + 400_000), BYLINE_INGEST__BATCH_ARTICLES=BATCH
    )
    try:
        answers: list[int] = []
        failure: dict[str, Any] = {}
        for start in range(0, 64, 8):
            reply = _post(server.url, start)
            answers.append(reply.status_code)
            if reply.status_code != 200:
                failure = {"status": reply.status_code, "type": reply.headers["content-type"], "body": reply.json()}
                break
        assert failure, f"the size limit was never reached: {answers}"
        assert failure["status"] == 503 and failure["type"].startswith("application/problem+json"), failure
        detail = failure["body"]["detail"]
        assert detail.startswith("cannot write the archive:") and str(tmp_path) not in detail, detail
        # Reads go on, and nothing of the failed request is listed without its text.
        assert (
            httpx.post(f"{server.url}/search", json={"query": "Qaratapa-Hamrin sector"}, timeout=30).status_code == 200
        )
        listed = httpx.get(f"{server.url}/articles", params={"limit": 100, "source": "Disk Gazette"}, timeout=30).json()
        for article in listed["articles"]:
            full = httpx.get(f"{server.url}/articles/{article['id']}", timeout=30).json()
            assert full["text"] == _clean_text_of(int(article["id"].split("-")[1])), article["id"]

        # Room again, but embedded Chroma hangs on a write after a failed one: refused at once, not hung.
        resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        again = _post(server.url, 0)
        assert again.status_code == 503 and "restart the server" in again.json()["detail"], again.text
    finally:
        server.stop()

    # Restarted with room, the server takes every article, and the archive is that of a clean run.
    server = ServeProcess(data, log, BYLINE_INGEST__BATCH_ARTICLES=BATCH)
    try:
        for start in range(0, 64, 8):
            assert _post(server.url, start).status_code == 200
        listed_after = httpx.get(f"{server.url}/articles", params={"limit": 100, "source": "Disk Gazette"}, timeout=30)
        assert listed_after.json()["total"] == 64
    finally:
        server.stop()
    final = archive_state(data)
    assert_consistent(final)
    assert {i: c[:3] for i, c in final.chunks.items()} == {i: c[:3] for i, c in clean.chunks.items()}
    record_figures("disk_full_api", {"requests": len(answers), "statuses": answers,
                                     "articles_listed_before_the_failure": len(listed["articles"]),
                                     "articles_listed_after_restart": 64})  # fmt: skip


def _clean_text_of(i: int) -> str:
    from ingest.clean import clean_text

    return clean_text(str(_story(i)["text"]))


def test_storage_failures_are_told_apart_from_input_trouble(tmp_path: Path) -> None:
    import errno
    import sqlite3

    import sqlalchemy.exc

    from ingest.pipeline import storage_problem

    data = tmp_path / "data"
    data.mkdir()
    full = OSError(errno.ENOSPC, "No space left on device", str(data / "lexical.sqlite3"))
    assert storage_problem(full, data) == "the disk is full (No space left on device)"
    outside = OSError(errno.EACCES, "Permission denied", str(tmp_path / "input.jsonl"))
    assert storage_problem(outside, data) is None  # an input file's trouble, not the archive's
    said = storage_problem(sqlite3.OperationalError("attempt to write a readonly database"), data)
    assert said is not None and said.startswith("the data directory is read-only")
    wrapped = sqlalchemy.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))
    assert storage_problem(wrapped, data) == storage_problem(wrapped.orig, data)  # a store in SQLAlchemy
    assert storage_problem(ValueError("bad record"), data) is None
