"""Ingest runs against a real Chroma in a temp dir with the real embedding model."""

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from backend.core.errors import IndexStale
from backend.core.types import SearchQuery
from backend.embedding import SentenceTransformerEmbedder
from backend.services import Services, build_registry, build_services, build_store
from backend.settings import Settings
from ingest.dedup import MINHASH_VERSION, minhash
from ingest.pipeline import Ingestor, WriterBusyError, writer_lock
from tests.conftest import DEMO


class CountingEmbedder(SentenceTransformerEmbedder):
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.__dict__.update(inner.__dict__)
        self.embedded = 0

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.embedded += len(texts)
        return super().embed_documents(texts)


def _write_jsonl(path: Path, records: list[dict[str, object]], extra_lines: Sequence[str] = ()) -> Path:
    lines = [json.dumps(r) for r in records]
    path.write_text("\n".join([*lines, *extra_lines]) + "\n", encoding="utf-8")
    return path


def test_demo_archive_ingests_every_article(services: Services, settings: Settings) -> None:
    report = Ingestor(settings, services.embedder, services.store, services.registry).ingest([DEMO])
    articles = DEMO.read_text(encoding="utf-8").strip().count("\n") + 1
    assert (report.articles_new, report.errors, report.duplicate_ids, report.exact_copies) == (articles, [], 0, 0)
    assert services.store.count() == report.chunks_written >= articles
    # The wire story republished by a second outlet with small edits is one story cluster.
    assert report.clusters == {"demo-005": ["demo-005", "demo-006"]}
    hits = services.store.chunk_ids_by_article(["demo-006"])
    assert hits and services.registry.get(["demo-006"])["demo-006"].cluster_id == "demo-005"


def test_reingesting_the_same_archive_embeds_nothing_and_keeps_the_count(
    settings: Settings, embedder: SentenceTransformerEmbedder
) -> None:
    counting = CountingEmbedder(embedder)
    store, registry = build_store(settings), build_registry(settings)
    first = Ingestor(settings, counting, store, registry).ingest([DEMO])
    count, embedded = store.count(), counting.embedded
    second = Ingestor(settings, counting, store, registry).ingest([DEMO])
    assert store.count() == count
    assert counting.embedded == embedded
    assert (second.articles_unchanged, second.articles_new, second.chunks_written) == (first.articles_new, 0, 0)


def test_malformed_lines_are_reported_with_file_and_line_and_the_rest_ingested(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    good = [{"id": f"g{i}", "title": f"Story {i}", "text": f"Good story number {i} about harbours."} for i in range(3)]
    path = _write_jsonl(tmp_path / "mixed.jsonl", good[:2], ['{"id": "broken", "text": "unterminated', "[1, 2]"])
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": "notext", "title": "no text"}) + "\n" + json.dumps(good[2]) + "\n")
    report = Ingestor(settings, services.embedder, services.store, services.registry).ingest([path])
    assert report.articles_new == 3
    assert sorted((e.path.name, e.line) for e in report.errors) == [
        ("mixed.jsonl", 3),
        ("mixed.jsonl", 4),
        ("mixed.jsonl", 5),
    ]
    assert "invalid JSON" in str(report.errors[0]) and str(report.errors[0]).startswith(f"{path}:3:")
    assert set(services.store.chunk_ids_by_article(["g0", "g1", "g2", "broken"])) == {"g0", "g1", "g2"}


def test_folders_are_walked_and_text_files_use_their_first_line_as_title(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "archive" / "nested"
    folder.mkdir(parents=True)
    (folder / "story.txt").write_text("The headline\n\nThe body of the story.\nMore body.", encoding="utf-8")
    (folder / "notes.md").write_text("# A markdown title\nSome markdown text.", encoding="utf-8")
    (folder / "empty.txt").write_text("   \n", encoding="utf-8")
    (folder / "image.png").write_bytes(b"\x89PNG")
    report = Ingestor(settings, services.embedder, services.store, services.registry).ingest(
        [tmp_path / "archive", tmp_path / "nope.jsonl"]
    )
    assert report.articles_new == 2
    assert sorted(str(e) for e in report.errors) == [
        f"{folder / 'empty.txt'}: empty file",
        f"{tmp_path / 'nope.jsonl'}: no such file or folder",
    ]
    titles = {c.title for c in services.store.iter_chunks()}
    assert titles == {"The headline", "A markdown title"}


def test_a_changed_article_replaces_its_chunks(services: Services, settings: Settings, tmp_path: Path) -> None:
    long_text = " ".join(f"Sentence {i} of the original story about ports and ships." for i in range(80))
    path = _write_jsonl(tmp_path / "a.jsonl", [{"id": "a1", "text": long_text}])
    ingestor = Ingestor(settings, services.embedder, services.store, services.registry)
    ingestor.ingest([path])
    before = services.store.chunk_ids_by_article(["a1"])["a1"]
    _write_jsonl(path, [{"id": "a1", "text": "A short corrected story."}])
    report = ingestor.ingest([path])
    after = services.store.chunk_ids_by_article(["a1"])["a1"]
    assert len(before) > 1 and len(after) == 1 and report.articles_updated == 1
    assert report.chunks_deleted == len(set(before) - set(after))
    assert services.store.count() == 1


def test_a_second_writer_fails_at_once_with_a_clear_message(settings: Settings) -> None:
    with (
        writer_lock(settings),
        pytest.raises(WriterBusyError, match="another ingest"),
        writer_lock(settings),
    ):
        pass


def test_an_index_of_another_analyzer_is_rebuilt_when_services_start_and_when_an_ingest_runs(
    services: Services, settings: Settings
) -> None:
    """Rebuilt where the archive is opened (a server starting, an ingest run), never found stale by a question."""
    Ingestor(settings, services.embedder, services.store, services.registry, services.lexical).ingest([DEMO])
    question = SearchQuery("Who commands the Qaratapa-Hamrin sector?")
    before = services.lexical.search(question, 10)
    assert before

    def age() -> None:
        with sqlite3.connect(settings.lexical_db) as db:
            db.execute("UPDATE lexical_meta SET value = value + 1 WHERE key = 'analyzer'")

    age()
    with pytest.raises(IndexStale):
        services.lexical.search(question, 10)
    reopened = build_services(settings, services.embedder)
    assert not reopened.lexical.stale and reopened.lexical.search(question, 10) == before
    age()
    Ingestor(settings, services.embedder, services.store, services.registry, services.lexical).ingest([DEMO])
    assert not services.lexical.stale and services.lexical.search(question, 10) == before


def test_an_archive_signed_by_another_minhash_is_re_signed_before_an_ingest_compares_with_it(
    services: Services, settings: Settings
) -> None:
    """Signatures of two MinHash versions are not comparable: a near-duplicate would go unseen."""
    Ingestor(settings, services.embedder, services.store, services.registry, services.lexical).ingest([DEMO])
    registry = services.registry
    assert registry.signature_version() == MINHASH_VERSION
    signed = registry.signed_ids()
    with sqlite3.connect(settings.articles_db) as db:  # as an older Byline left it
        db.execute("UPDATE article_meta SET value = 1 WHERE key = 'minhash'")
        db.execute("UPDATE articles SET signature = ?", (np.zeros(128, dtype=np.uint32).tobytes(),))
        db.execute("DELETE FROM article_lsh")
    first = signed[0]
    record = registry.get([first])[first]
    text = services.store.article_text(first)
    # A republished copy with a new headline and a trimmed end: found only if the stored signature is current.
    wire = {"id": "wire-copy", "title": "Republished", "text": " ".join(text.split()[:-3]), "source": "Wire"}
    path = settings.data_dir / "wire.jsonl"
    path.write_text(json.dumps(wire) + "\n")
    Ingestor(settings, services.embedder, services.store, registry, services.lexical).ingest([path])
    assert registry.signature_version() == MINHASH_VERSION and registry.signed_ids() == sorted([*signed, "wire-copy"])
    resigned = registry.get([first])[first].signature
    assert resigned is not None and np.array_equal(resigned, minhash(text))
    assert registry.get(["wire-copy"])["wire-copy"].cluster_id == record.cluster_id


@pytest.mark.integration
def test_an_archive_whose_registry_is_in_postgresql_clusters_and_skips_what_it_stored(
    tmp_path: Path, postgres_url: str, embedder: SentenceTransformerEmbedder
) -> None:
    """Real MinHash signatures and LSH buckets (signed 64-bit) through PostgreSQL, under its writer lock."""
    settings = Settings(data_dir=tmp_path / "data", database_url=SecretStr(postgres_url))
    store = build_store(settings)
    first = Ingestor(settings, embedder, store, build_registry(settings)).ingest([DEMO])
    assert first.clusters == {"demo-005": ["demo-005", "demo-006"]} and not first.errors
    registry = build_registry(settings)
    assert registry.count() == first.articles_new and registry.signature_version() == MINHASH_VERSION
    assert not settings.articles_db.exists() and not (settings.data_dir / ".ingest.lock").exists()
    second = Ingestor(settings, embedder, store, registry).ingest([DEMO])
    assert (second.articles_unchanged, second.articles_new, second.chunks_written) == (first.articles_new, 0, 0)
