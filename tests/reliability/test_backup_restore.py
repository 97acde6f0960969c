"""``byline backup DIR`` and ``byline restore DIR``: a consistent copy, refused while a writer runs or a
server has the embedded store open; after a restore, the same counts and the same top-5 ``/search``
results for 20 questions, whether restored over a changed archive or into an empty directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.answering.feedback import FeedbackStore
from backend.answering.sessions import SessionStore
from backend.core.types import Turn
from backend.settings import Settings
from ingest.pipeline import writer_lock
from tests.conftest import ROOT
from tests.reliability.conftest import (
    ServeProcess,
    archive_state,
    assert_consistent,
    byline,
    copy_archive,
    record_figures,
    write_jsonl,
)

pytestmark = pytest.mark.slow

QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "demo" / "questions.jsonl").open(encoding="utf-8")][:20]


def _search_top5(url: str) -> list[list[tuple[str, str, float]]]:
    results = []
    for question in QUESTIONS:
        reply = httpx.post(f"{url}/search", json={"query": question, "k": 5, "as_of": "2024-12-31"}, timeout=60)
        assert reply.status_code == 200, reply.text
        results.append([(r["chunk_id"], r["article_id"], round(r["score"], 6)) for r in reply.json()["results"]])
    return results


def _observed(data: Path, log: Path) -> dict[str, Any]:
    """What a server over ``data`` shows: its counts and the top 5 for each question."""
    server = ServeProcess(data, log)
    try:
        archive = httpx.get(f"{server.url}/archive", timeout=30).json()
        sessions = httpx.get(f"{server.url}/sessions", params={"limit": 100}, timeout=30).json()["sessions"]
        return {
            "articles": archive["articles"],
            "chunks": archive["chunks"],
            "conversations": len(sessions),
            "turns": sum(s["turns"] for s in sessions),
            "top5": _search_top5(server.url),
        }
    finally:
        server.stop()


def _feedback_count(data: Path) -> int:
    return sum(1 for _ in FeedbackStore(Settings(data_dir=data).sessions_db).export())


@pytest.fixture
def archive(demo_archive: Path, tmp_path: Path) -> Path:
    """The demo archive with more articles, conversations and feedback."""
    data = copy_archive(demo_archive, tmp_path / "data")
    extra = [
        {"id": f"bk-{i}", "title": f"Harbour report {i}", "source": "Backup Gazette", "published_at": "2024-05-01",
         "text": f"The harbour master of Port Ilsen logged {i * 3} ships on day {i}. Crews unloaded grain and steel."}
        for i in range(12)
    ]  # fmt: skip
    added = byline(["ingest", "-q", str(write_jsonl(tmp_path / "extra.jsonl", extra))], data)
    assert added.returncode == 0, added.stderr[-2000:]
    settings = Settings(data_dir=data)
    sessions, feedback = SessionStore(settings.sessions_db), FeedbackStore(settings.sessions_db)
    for i in range(5):
        session_id = f"session-{i}"
        sessions.append(session_id, Turn(f"Question {i}?", f"Question {i}", f"Answer {i} [1]", ()))
        feedback.add(sessions, session_id, 0, "up" if i % 2 else "down", f"comment {i}")
    return data


def test_backup_then_restore_gives_the_same_counts_and_search_results(archive: Path, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    before = _observed(archive, log)
    feedback_before = _feedback_count(archive)

    backup_dir = tmp_path / "backup"
    made = byline(["backup", str(backup_dir)], archive)
    assert made.returncode == 0, made.stderr
    assert f"backed up to {backup_dir}" in made.stdout and "36 articles" in made.stdout, made.stdout
    manifest = json.loads((backup_dir / "byline-backup.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["articles"] == before["articles"] == 36
    assert not list(backup_dir.rglob("*-wal")) and not list(backup_dir.rglob("*.lock"))

    # The archive changes after the backup: an article goes, a conversation and feedback come.
    assert byline(["delete", "bk-3"], archive).returncode == 0
    settings = Settings(data_dir=archive)
    sessions = SessionStore(settings.sessions_db)
    sessions.append("later", Turn("Later?", "Later", "Later [1]", ()))
    FeedbackStore(settings.sessions_db).add(sessions, "later", 0, "up")
    assert _observed(archive, log)["articles"] == 35

    restored = byline(["restore", str(backup_dir)], archive)
    assert restored.returncode == 0, restored.stderr
    kept = next(archive.parent.glob("data.before-restore-*"))
    assert f"the archive it replaced is kept in {kept}" in restored.stdout
    fresh = tmp_path / "fresh" / "data"
    into_new = byline(["restore", str(backup_dir)], fresh)
    assert into_new.returncode == 0 and "kept in" not in into_new.stdout, into_new.stderr

    for data in (archive, fresh):
        after = _observed(data, log)
        assert {k: v for k, v in after.items() if k != "top5"} == {k: v for k, v in before.items() if k != "top5"}
        assert after["top5"] == before["top5"]  # the same chunks in the same order with the same scores
        assert _feedback_count(data) == feedback_before
        assert_consistent(archive_state(data))
    record_figures(
        "backup_restore",
        {"articles": before["articles"], "chunks": before["chunks"], "conversations": before["conversations"],
         "feedback": feedback_before, "questions_compared": len(QUESTIONS), "top5_identical": True,
         "restores": 2, "files": len(manifest["files"])},
    )  # fmt: skip


def test_backup_and_restore_refuse_while_a_writer_or_a_server_holds_the_archive(archive: Path, tmp_path: Path) -> None:
    backup_dir = tmp_path / "backup"
    with writer_lock(Settings(data_dir=archive)):
        busy = byline(["backup", str(backup_dir)], archive)
    assert busy.returncode == 2 and "another ingest is writing to" in busy.stderr, busy.stderr
    assert not backup_dir.exists() and not backup_dir.with_name("backup.partial").exists()

    assert byline(["backup", str(backup_dir)], archive).returncode == 0
    server = ServeProcess(archive, tmp_path / "serve.log")
    try:
        served = byline(["backup", str(tmp_path / "other")], archive)
        assert served.returncode == 2 and "a Byline server has the archive" in served.stderr, served.stderr
        refused = byline(["restore", str(backup_dir)], archive)
        assert refused.returncode == 2 and "a Byline server has the archive" in refused.stderr, refused.stderr
        assert httpx.get(f"{server.url}/archive", timeout=30).json()["articles"] == 36  # left alone
    finally:
        server.stop()
    with writer_lock(Settings(data_dir=archive)):
        writing = byline(["restore", str(backup_dir)], archive)
    assert writing.returncode == 2 and "another ingest is writing to" in writing.stderr


def test_a_damaged_or_partial_backup_is_refused_before_anything_is_replaced(archive: Path, tmp_path: Path) -> None:
    backup_dir = tmp_path / "backup"
    assert byline(["backup", str(backup_dir)], archive).returncode == 0
    before = archive_state(archive)
    registry = backup_dir / "articles.sqlite3"
    damaged = bytearray(registry.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    registry.write_bytes(bytes(damaged))
    refused = byline(["restore", str(backup_dir)], archive)
    assert refused.returncode == 2 and "damaged or incomplete: articles.sqlite3" in refused.stderr, refused.stderr
    registry.unlink()
    assert "articles.sqlite3 is missing" in byline(["restore", str(backup_dir)], archive).stderr
    not_backup = byline(["restore", str(tmp_path)], archive)
    assert not_backup.returncode == 2 and "is not a Byline backup" in not_backup.stderr
    assert archive_state(archive) == before
    assert not list(archive.parent.glob("data.before-restore-*"))


def test_a_backup_into_a_non_empty_directory_or_of_nothing_is_refused(archive: Path, tmp_path: Path) -> None:
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine", encoding="utf-8")
    result = byline(["backup", str(occupied)], archive)
    assert result.returncode == 2 and "exists and is not empty" in result.stderr
    assert (occupied / "keep.txt").read_text(encoding="utf-8") == "mine"
    nothing = byline(["backup", str(tmp_path / "b2")], tmp_path / "no-archive")
    assert nothing.returncode == 2 and "there is no archive in" in nothing.stderr
