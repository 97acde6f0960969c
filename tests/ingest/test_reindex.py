"""``byline reindex`` in process: the demo archive, embedded by the default model, re-embedded by another
encoder made from it (``other_model`` in tests/conftest.py). The command line, with a real kill -9, is in
tests/test_cli.py."""

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from backend.core.errors import EncoderMismatch
from backend.core.types import SearchQuery
from backend.embedding import SentenceTransformerEmbedder
from backend.retrieval.dense import DenseRetriever
from backend.services import build_lexical, build_registry, build_services, build_store
from backend.settings import EmbeddingSettings, Settings
from ingest.pipeline import Ingestor, WriterBusyError, delete_article, writer_lock
from ingest.reindex import ReindexReport, reindex
from tests.conftest import DEMO, QARATAPA_ID, QARATAPA_QUESTION


@pytest.fixture
def archive(settings: Settings, embedder: SentenceTransformerEmbedder) -> Settings:
    """The demo archive, embedded by the default model; returns its settings."""
    services = build_services(settings, embedder)
    report = Ingestor(settings, embedder, services.store, services.registry).ingest([DEMO])
    assert not report.errors and report.articles_new == 24
    return settings


def _with(settings: Settings, model: Path) -> Settings:
    return settings.model_copy(update={"embedding": EmbeddingSettings(model=str(model))})


class _Stop(Exception):
    pass


def test_reindex_switches_the_archive_to_the_configured_encoder_and_serves_the_old_until_done(
    archive: Settings, embedder: SentenceTransformerEmbedder, other_embedder: SentenceTransformerEmbedder
) -> None:
    default, other = embedder.identity(), other_embedder.identity()
    assert build_store(archive, default).encoder == default  # recorded by the first ingest
    switched = _with(archive, Path(other.model))
    with pytest.raises(EncoderMismatch, match="byline reindex"):
        build_services(switched, other_embedder)

    during: list[tuple[str, int, str]] = []

    def look(report: ReindexReport) -> None:  # a reader between batches: the old vectors, whole
        if not during:
            old = build_store(archive, default)
            best = DenseRetriever(embedder, old).retrieve(SearchQuery(QARATAPA_QUESTION))[0]
            during.append((old.name, old.count(), best.chunk.article_id))

    report = reindex(switched, other_embedder, look, batch_size=8)
    assert report.swapped and report.chunks_embedded == report.chunks_total > 8 and report.chunks_kept == 0
    assert during == [(archive.chroma.collection, report.chunks_total, QARATAPA_ID)]

    services = build_services(switched, other_embedder)  # starts with the new encoder
    assert services.store.encoder == other and services.store.name == report.collection
    assert services.retriever.retrieve(SearchQuery(QARATAPA_QUESTION))[0].chunk.article_id == QARATAPA_ID
    chunk = next(services.store.iter_chunks())
    nearest = services.store.query(other_embedder.embed_query(chunk.text), SearchQuery("q"), n=1)[0]
    assert nearest.chunk.id == chunk.id and nearest.score == pytest.approx(1.0, abs=1e-4)  # the new model's vector
    with pytest.raises(EncoderMismatch):
        build_store(archive, default)
    with closing(sqlite3.connect(archive.chroma_dir / "chroma.sqlite3")) as db:
        segments = {row[0] for row in db.execute("SELECT id FROM segments")}
    folders = {p.name for p in archive.chroma_dir.iterdir() if p.is_dir()}
    assert folders and folders <= segments  # the old vectors' files are gone too (Chroma leaves them)

    again = Ingestor(switched, other_embedder, services.store, services.registry).ingest([DEMO])
    assert (again.articles_unchanged, again.texts_embedded) == (24, 0)  # re-embedded is not changed
    assert not reindex(switched, other_embedder).swapped  # nothing left to do


def test_an_interrupted_reindex_resumes_and_follows_what_changed_meanwhile(
    archive: Settings, embedder: SentenceTransformerEmbedder, other_embedder: SentenceTransformerEmbedder
) -> None:
    switched = _with(archive, Path(other_embedder.identity().model))

    def stop_after_two_batches(report: ReindexReport) -> None:
        if report.chunks_seen >= 8:
            raise _Stop

    with pytest.raises(_Stop):
        reindex(switched, other_embedder, stop_after_two_batches, batch_size=4)
    old = build_store(archive, embedder.identity())  # still the live one, whole
    total = old.count()
    assert old.name == archive.chroma.collection
    # Meanwhile, under the old encoder, an article goes (its chunks were among the first re-embedded).
    removal = delete_article(archive, old, build_registry(archive), build_lexical(archive), QARATAPA_ID)

    report = reindex(switched, other_embedder, batch_size=4)
    assert report.swapped and report.chunks_total == total - removal.chunks
    assert report.chunks_kept == 8 - removal.chunks and report.chunks_removed == removal.chunks
    assert report.chunks_embedded == report.chunks_total - report.chunks_kept
    assert build_store(switched, other_embedder.identity()).count() == total - removal.chunks
    assert "kept" in report.progress_line() and report.collection in report.summary()


def test_reindex_waits_for_no_writer(settings: Settings, other_embedder: SentenceTransformerEmbedder) -> None:
    with writer_lock(settings), pytest.raises(WriterBusyError):
        reindex(settings, other_embedder)
