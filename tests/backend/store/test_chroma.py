"""What is Chroma's own in the store: the two-width search, the encoder recorded on a collection, the swap of a
reindex. What every vector store does is in ``tests/contracts/vector_store.py``."""

import logging
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from chromadb.api import ClientAPI

from backend.core.encoder import EncoderIdentity
from backend.core.errors import EncoderMismatch
from backend.core.types import Chunk, SearchFilters, SearchQuery
from backend.settings import ChromaSettings
from backend.store import chroma
from backend.store.chroma import ChromaStore, build_where, live_collection, open_client, source_key


def _chunk(article_id: str, source: str | None, published: datetime | None) -> Chunk:
    return Chunk(
        id=f"{article_id}:0:x",
        article_id=article_id,
        position=0,
        text=f"text of {article_id}",
        title=f"title {article_id}",
        url=f"https://example.org/{article_id}",
        source=source,
        published_at=published,
    )


def test_outlet_keys_ignore_case_and_punctuation() -> None:
    assert source_key("The Verge") == source_key("the-verge") == "theverge"


@pytest.mark.parametrize("max_wide", [1000, 60])  # 60: the fallback to Chroma's filter runs too
def test_wide_unfiltered_search_and_filtered_search_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_wide: int
) -> None:
    """Post-filtering the nearest chunks gives what Chroma's own filter gives, however many pass."""
    monkeypatch.setattr(chroma, "_MAX_WIDE", max_wide)
    store = ChromaStore.embedded(tmp_path / "chroma", "many_chunks")
    chunks, vectors = [], []
    for i in range(300):
        day = datetime(2023, 1, 1, tzinfo=UTC).replace(day=1 + i % 28, month=1 + i % 12)
        chunks.append(_chunk(f"a{i}", ["Reuters", "The Verge", None][i % 3], day if i % 7 else None))
        vectors.append([1.0, i / 300, (i % 13) / 13])
    store.upsert(chunks, vectors, [{}] * len(chunks))
    queries = [
        SearchQuery("q", as_of=date(2023, 6, 1)),
        SearchQuery("q", as_of=date(2023, 1, 2)),  # few pass: falls back to Chroma's filter
        SearchQuery("q", filters=SearchFilters(sources=("reuters",), published_after=date(2023, 11, 1))),
    ]
    for query in queries:
        for n in (3, 10, 40):
            fast = [h.chunk.id for h in store.query([1.0, 0.2, 0.5], query, n)]
            exact = [h.chunk.id for h in store._search([1.0, 0.2, 0.5], 300, build_where(query))][:n]
            assert fast == exact, (query, n)


# The encoder that made a collection's vectors: recorded, checked on opening, swapped by a reindex.

A = EncoderIdentity(model="model-a", backend="torch", dimension=3, weights="aaaaaaaaaaaa")
A_ONNX = EncoderIdentity(model="/copy/of/model-a", backend="onnx", dimension=3, weights="aaaaaaaaaaaa")
B = EncoderIdentity(model="model-b", backend="torch", dimension=3, weights="bbbbbbbbbbbb")
WIDE = EncoderIdentity(model="model-w", backend="torch", dimension=4, weights="cccccccccccc")


def _client(tmp_path: Path) -> ClientAPI:
    return open_client(ChromaSettings(), tmp_path / "chroma")


def _fill(store: ChromaStore, width: int = 3) -> None:
    chunks = [_chunk(name, "Reuters", None) for name in ("one", "two")]
    store.upsert(chunks, [[1.0] + [0.0] * (width - 1), [0.0, 1.0] + [0.0] * (width - 2)], [{}, {}])


def test_the_encoder_is_recorded_with_the_first_vectors_and_another_one_is_refused(tmp_path: Path) -> None:
    client = _client(tmp_path)
    store = ChromaStore(client, "chunks", A)
    assert store.encoder is None  # nothing written yet
    _fill(store)
    assert store.encoder == A and store.chunked_with == "model-a"
    assert ChromaStore(client, "chunks", A_ONNX).count() == 2  # the same weights on another backend
    with pytest.raises(EncoderMismatch) as refused:
        ChromaStore(client, "chunks", B)
    message = str(refused.value)
    assert A.describe() in message and B.describe() in message and "byline reindex" in message
    assert "BYLINE_EMBEDDING__MODEL=model-a" in message
    assert ChromaStore(client, "chunks").count() == 2  # opened without an encoder: for what needs no vectors


def test_an_emptied_collection_takes_the_next_encoder_even_of_another_dimension(tmp_path: Path) -> None:
    client = _client(tmp_path)
    store = ChromaStore(client, "chunks", A)
    _fill(store)
    store.delete(["one:0:x", "two:0:x"])
    wide = ChromaStore(client, "chunks", WIDE)
    _fill(wide, width=4)
    assert wide.encoder == WIDE and wide.count() == 2


def test_an_archive_from_before_encoders_were_recorded_is_adopted_when_the_dimension_agrees(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = _client(tmp_path)
    _fill(ChromaStore(client, "chunks"))  # written with no encoder recorded, as before
    with pytest.raises(EncoderMismatch, match="unrecorded encoder of 3 dimensions"):
        ChromaStore(client, "chunks", WIDE)
    with caplog.at_level(logging.WARNING, logger="byline.store"):
        adopted = ChromaStore(client, "chunks", A)
    assert adopted.encoder == A and "had no encoder recorded" in caplog.text
    with pytest.raises(EncoderMismatch):
        ChromaStore(client, "chunks", B)


def test_a_promoted_collection_replaces_the_live_one_for_every_reader(tmp_path: Path) -> None:
    client = _client(tmp_path)
    live = ChromaStore(client, "chunks", A)
    _fill(live)
    reader = ChromaStore(client, "chunks", A)  # a server in http mode, open through the swap
    plain = ChromaStore(client, "chunks")
    staged = live.stage(B, chunked_with=live.chunked_with or "")
    for records in live.iter_records(page=1):
        staged.write_records(records, [[0.0, 0.0, 1.0]] * len(records))
    assert reader.count() == 2 and reader.name == "chunks"  # old vectors served until the swap
    assert live.promote(staged) == ["chunks"]
    assert live_collection(client, "chunks") == staged.name
    opened = ChromaStore(client, "chunks", B)
    assert opened.name == staged.name and opened.encoder == B and opened.chunked_with == "model-a"
    assert opened.query([0.0, 0.0, 1.0], SearchQuery("q"), n=1)[0].score == pytest.approx(1.0)
    assert plain.count() == 2  # a reader without an encoder follows the swap
    with pytest.raises(EncoderMismatch):
        reader.count()  # one with the old encoder is told, not served the new vectors
    assert sorted(c.name for c in client.list_collections()) == ["chunks__live", staged.name]
