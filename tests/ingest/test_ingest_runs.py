"""Whole ingest runs: duplicates, replacement, delete, prune, broken input, crashes and a second writer."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.services import Services, build_lexical, build_registry, build_store
from backend.settings import Settings
from ingest.pipeline import ArticleNotFoundError, Ingestor, IngestReport, delete_article, writer_lock
from tests.conftest import registry_rows


def _ingestor(services: Services, settings: Settings) -> Ingestor:
    return Ingestor(settings, services.embedder, services.store, services.registry)


def _delete(services: Services, settings: Settings, key: str) -> str:
    return str(delete_article(settings, services.store, services.registry, services.lexical, key))


def _jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _story(i: int, sentences: int = 6) -> str:
    rng = random.Random(i)
    places = ["Harbor City", "Ardenvale", "Port Calder", "Baqubah", "Erbil", "Kirkuk"]
    verbs = ["opened", "closed", "delayed", "approved", "rejected", "extended"]
    things = ["a tram line", "flood defences", "a pay deal", "a water agreement", "joint patrols", "a museum"]
    return " ".join(
        f"Officials in {rng.choice(places)} {rng.choice(verbs)} {rng.choice(things)} on day {rng.randint(1, 300)} "
        f"of story {i}, sentence {s}."
        for s in range(sentences)
    )


def test_exact_copies_are_stored_once_and_keep_every_url_and_outlet(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    text = _story(1)
    records = [
        {"id": "wire-1", "url": "https://wire.example/1", "source": "Meridian Wire", "text": text},
        {"id": "post-1", "url": "https://post.example/1", "source": "Harbor Post", "text": text.upper()},
        {"id": "ledger-1", "url": "https://ledger.example/1", "source": "Tigris Ledger", "text": "  " + text},
    ]
    report = _ingestor(services, settings).ingest([_jsonl(tmp_path / "a.jsonl", records)])
    assert (report.articles_new, report.exact_copies) == (1, 2)
    assert set(services.store.chunk_ids_by_article(["wire-1", "post-1", "ledger-1"])) == {"wire-1"}
    copies = services.registry.copies(["wire-1"])["wire-1"]
    assert {(c.url, c.source) for c in copies} == {
        ("https://post.example/1", "Harbor Post"),
        ("https://ledger.example/1", "Tigris Ledger"),
    }
    # A copy is found by its own URL too, and deleting it leaves the article.
    assert services.registry.find("https://post.example/1")[1] is not None
    assert "deleted copy post-1" in _delete(services, settings, "https://post.example/1")
    assert services.store.chunk_ids_by_article(["wire-1"])


def test_near_duplicates_share_a_story_cluster_on_every_chunk(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    text = _story(2, sentences=30)
    edited = "UPDATED. " + text.replace("sentence 3.", "sentence three.").rsplit(" Officials", 2)[0]
    first = _ingestor(services, settings).ingest([_jsonl(tmp_path / "a.jsonl", [{"id": "a", "text": text}])])
    second = _ingestor(services, settings).ingest(
        [_jsonl(tmp_path / "b.jsonl", [{"id": "b", "text": edited}, {"id": "c", "text": _story(3, 30)}])]
    )
    assert first.clusters == {} and second.clusters == {"a": ["a", "b"]}
    clusters = {c.article_id: c.cluster_id for c in services.store.iter_chunks()}
    assert clusters == {"a": "a", "b": "a", "c": "c"}
    assert "story clusters: 1 with several articles (2 articles)" in second.summary()


def test_delete_by_id_and_url_and_a_clear_error_for_unknown(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    records = [{"id": f"d{i}", "url": f"https://e.org/{i}", "text": _story(10 + i)} for i in range(3)]
    _ingestor(services, settings).ingest([_jsonl(tmp_path / "a.jsonl", records)])
    assert _delete(services, settings, "d0").startswith("deleted article d0")
    assert _delete(services, settings, "https://e.org/1").startswith("deleted article d1")
    assert set(services.store.chunk_ids_by_article(["d0", "d1", "d2"])) == {"d2"}
    assert set(services.registry.get(["d0", "d1", "d2"])) == {"d2"}
    with pytest.raises(ArticleNotFoundError, match="nothing-here"):
        _delete(services, settings, "nothing-here")


def test_prune_removes_articles_gone_from_the_given_source_only(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "feed"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.txt").write_text(f"Title {i}\n{_story(20 + i)}", encoding="utf-8")
    other = _jsonl(tmp_path / "other.jsonl", [{"id": "elsewhere", "text": _story(30)}])
    ingestor = _ingestor(services, settings)
    ingestor.ingest([folder, other])
    (folder / "1.txt").unlink()
    report = ingestor.ingest([folder], prune=True)
    assert (report.articles_unchanged, report.articles_pruned) == (2, 1)
    titles = {c.title for c in services.store.iter_chunks()}
    assert titles == {"Title 0", "Title 2", ""}
    assert "elsewhere" in services.registry.get(["elsewhere"])


def test_oversized_articles_are_cut_with_a_warning(services: Services, tmp_path: Path) -> None:
    settings = services.settings.model_copy(
        update={"ingest": services.settings.ingest.model_copy(update={"max_chars": 1000})}
    )
    report = Ingestor(settings, services.embedder, services.store, services.registry).ingest(
        [_jsonl(tmp_path / "big.jsonl", [{"id": "big", "text": _story(40, sentences=200)}])]
    )
    assert report.articles_new == 1 and "cut to 1,000" in str(report.warnings[0])
    chunk_texts = [c.text for c in services.store.iter_chunks()]
    assert sum(len(t) for t in chunk_texts) <= 1000 + 300  # overlap repeats a sentence or two


def test_a_folder_of_good_and_broken_files(services: Services, settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    _jsonl(folder / "good.jsonl", [{"id": f"g{i}", "text": _story(50 + i)} for i in range(3)])
    (folder / "good.txt").write_text("A title\nSome story text about ports.", encoding="utf-8")
    (folder / "empty.jsonl").write_bytes(b"")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.json").write_bytes(os.urandom(512))
    (folder / "truncated.json").write_text('[{"id": "t1", "text": "cut', encoding="utf-8")
    (folder / "nul.txt").write_bytes(b"Title with NUL\x00\nBody \x00 with NUL bytes and \xff\xfe invalid UTF-8.")
    (folder / "latin1.csv").write_bytes("title,text\nCaf\xe9,Un caf\xe9 au port.\n".encode("latin-1"))
    (folder / "broken.html").write_text("<html><body></body></html>", encoding="utf-8")
    (folder / "broken.rss").write_text("<rss><channel><title>x</title></channel></rss>", encoding="utf-8")
    report = _ingestor(services, settings).ingest([folder])
    failed = sorted({e.path.name for e in report.errors})
    assert failed == ["binary.json", "broken.html", "broken.rss", "empty.jsonl", "empty.txt", "truncated.json"]
    assert report.articles_new == 6  # 3 JSONL + good.txt + nul.txt + latin1.csv (with replacement characters)
    nul = list(services.store.iter_chunks())
    assert all("\x00" not in c.text and "\ufffd" not in c.text for c in nul)


def test_progress_reports_bytes_until_done(services: Services, settings: Settings, tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "a.jsonl", [{"id": f"p{i}", "text": _story(60 + i, 2)} for i in range(70)])
    seen: list[tuple[int, int]] = []

    def progress(report: IngestReport) -> None:
        seen.append((report.bytes_done, report.articles_seen))

    settings = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"batch_articles": 16})})
    Ingestor(settings, services.embedder, services.store, services.registry).ingest([path], progress=progress)
    assert len(seen) >= 5 and seen == sorted(seen)
    assert seen[-1] == (path.stat().st_size, 70)


# --- processes: a crash, and a second writer -------------------------------------------------

BYLINE = [sys.executable, "-m", "byline"]


def _env(data: Path) -> dict[str, str]:
    return {**os.environ, "BYLINE_DATA_DIR": str(data), "BYLINE_INGEST__BATCH_ARTICLES": "8"}


def _state(data: Path) -> tuple[dict[str, tuple[str, int]], set[str]]:
    settings = Settings(data_dir=data)
    registry = build_registry(settings)
    assert registry.integrity_ok()
    chunks = build_store(settings).chunk_index()
    assert build_lexical(settings).ids() == set(chunks)  # both indexes describe the same chunks
    return chunks, registry.ids()


@pytest.mark.slow
def test_killed_at_random_moments_then_rerun_gives_exactly_a_clean_run(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "articles.jsonl", [{"id": f"k{i}", "text": _story(100 + i, 8)} for i in range(240)])
    crashed = tmp_path / "crashed"
    rng = random.Random(7)
    stored_at_kill = []
    for _ in range(3):
        process = subprocess.Popen([*BYLINE, "ingest", "-q", str(source)], env=_env(crashed), stderr=subprocess.DEVNULL)
        registry_file = crashed / "articles.sqlite3"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if registry_file.exists() and registry_rows(registry_file) > 0:
                break
            time.sleep(0.1)
        time.sleep(rng.uniform(0.0, 2.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        stored_at_kill.append(registry_rows(registry_file))
    assert any(0 < rows < 240 for rows in stored_at_kill), stored_at_kill  # killed mid-run, not after
    finished = subprocess.run(
        [*BYLINE, "ingest", "-q", str(source)], env=_env(crashed), capture_output=True, text=True, check=False
    )
    assert finished.returncode == 0, finished.stderr
    clean = tmp_path / "clean"
    subprocess.run([*BYLINE, "ingest", "-q", str(source)], env=_env(clean), check=True, capture_output=True)

    crashed_chunks, crashed_articles = _state(crashed)
    clean_chunks, clean_articles = _state(clean)
    assert crashed_chunks == clean_chunks
    assert crashed_articles == clean_articles == {f"k{i}" for i in range(240)}
    positions = list(crashed_chunks.values())
    assert len(positions) == len(set(positions))  # no article position stored twice


def test_a_second_ingest_on_the_same_directory_fails_at_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    source = _jsonl(tmp_path / "a.jsonl", [{"id": "x", "text": "x"}])
    with writer_lock(Settings(data_dir=data)):
        started = time.monotonic()
        result = subprocess.run(
            [*BYLINE, "ingest", str(source)], env=_env(data), capture_output=True, text=True, check=False, timeout=120
        )
    assert result.returncode == 2
    assert "another ingest is writing to" in result.stderr
    assert time.monotonic() - started < 60


def test_lexical_and_vector_indexes_hold_the_same_chunks_through_adds_replacements_and_deletes(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    def agree() -> None:
        assert services.lexical.ids() == set(services.store.chunk_index())

    folder = tmp_path / "src"
    folder.mkdir()
    _jsonl(
        folder / "a.jsonl",
        [{"id": f"x{i}", "url": f"https://e.org/x{i}", "text": _story(70 + i, 12)} for i in range(4)],
    )
    (folder / "b.txt").write_text(f"Lone title\n{_story(80)}", encoding="utf-8")
    ingestor = _ingestor(services, settings)
    ingestor.ingest([folder])
    agree()
    _jsonl(
        folder / "a.jsonl",
        [{"id": "x0", "text": "A short replacement story about ports."}, {"id": "x1", "text": _story(71, 12)}],
    )
    ingestor.ingest([folder], prune=True)  # x0 replaced, x2 and x3 pruned
    agree()
    _delete(services, settings, "x1")
    agree()
    assert services.lexical.count() == services.store.count() > 0
    # A lexical index that lost its rows (a crash between the two writes) is rebuilt by the next run.
    services.lexical.clear()
    ingestor.ingest([folder])
    agree()
