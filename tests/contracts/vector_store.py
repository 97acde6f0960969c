"""What every ``VectorStore`` does, whatever keeps the vectors.

An implementation's suite subclasses ``VectorStoreContract`` (as ``Test...``) and provides ``make_store``:
a callable that opens the test's store, empty at first, for the encoder ``ENCODER``; each call opens the same
data again, as another process would.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest

from backend.core.encoder import EncoderIdentity
from backend.core.filters import matches
from backend.core.protocols import VectorStore
from backend.core.types import Chunk, SearchFilters, SearchQuery

ENCODER = EncoderIdentity(model="contract-model", backend="torch", dimension=3, weights="c0ffee000000")
MakeStore = Callable[[], VectorStore]


def chunk(article_id: str, position: int = 0, text: str = "", **fields: object) -> Chunk:
    return Chunk(
        id=f"{article_id}:{position}",
        article_id=article_id,
        position=position,
        text=text or f"text of {article_id} at {position}",
        title=f"title of {article_id}",
        **fields,  # type: ignore[arg-type]  # the optional fields of a Chunk, by name
    )


# Four articles around one query direction, nearest first: dated, of two outlets, and one undated.
ARCHIVE = [
    chunk("old", source="The Verge", published_at=datetime(2023, 1, 10, tzinfo=UTC), url="https://e.org/old"),
    chunk("mid", source="Reuters", published_at=datetime(2023, 6, 1, 23, 30, tzinfo=UTC), cluster_id="old"),
    chunk("new", source="Reuters", published_at=datetime(2024, 2, 1, tzinfo=UTC)),
    chunk("undated"),
]
VECTORS = [[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.7, 0.3, 0.0]]
QUERY = [1.0, 0.0, 0.0]
FILTERED = [
    SearchQuery("q", as_of=date(2023, 6, 1)),
    SearchQuery("q", as_of=date(2023, 5, 31)),
    SearchQuery("q", filters=SearchFilters(published_after=date(2023, 6, 1), published_before=date(2024, 12, 31))),
    SearchQuery("q", filters=SearchFilters(sources=("the verge",))),
    SearchQuery("q", as_of=date(2023, 12, 31), filters=SearchFilters(sources=("REUTERS",))),
    SearchQuery("q", filters=SearchFilters(sources=("no such outlet",))),
]


def filled(make_store: MakeStore) -> VectorStore:
    store = make_store()
    store.upsert(ARCHIVE, VECTORS, [{"content_hash": f"hash-{c.article_id}"} for c in ARCHIVE])
    return store


class VectorStoreContract:
    def test_it_is_a_vector_store(self, make_store: MakeStore) -> None:
        assert isinstance(make_store(), VectorStore)

    def test_an_empty_store_finds_nothing(self, make_store: MakeStore) -> None:
        store = make_store()
        assert store.count() == 0 and store.query(QUERY, SearchQuery("q"), n=5) == []
        assert list(store.iter_chunks()) == [] and store.get_chunks(["old:0"]) == {}
        assert store.chunk_ids_by_article(["old"]) == {} and store.article_text("old") == ""

    def test_upserted_chunks_are_found_nearest_first_with_every_field(self, make_store: MakeStore) -> None:
        store = filled(make_store)
        hits = store.query(QUERY, SearchQuery("q"), n=10)
        assert [h.chunk for h in hits] == ARCHIVE  # every field comes back as it went in
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert [h.chunk.id for h in store.query([0.7, 0.3, 0.0], SearchQuery("q"), n=1)] == ["undated:0"]

    def test_a_query_returns_at_most_n(self, make_store: MakeStore) -> None:
        store = filled(make_store)
        assert [h.chunk.id for h in store.query(QUERY, SearchQuery("q"), n=2)] == ["old:0", "mid:0"]

    @pytest.mark.parametrize("query", FILTERED, ids=lambda q: f"{q.as_of}-{q.filters}")
    def test_filters_keep_exactly_what_the_reference_keeps(self, make_store: MakeStore, query: SearchQuery) -> None:
        store = filled(make_store)
        expected = [c.id for c in ARCHIVE if matches(c.published_at, c.source, query)]
        assert [h.chunk.id for h in store.query(QUERY, query, n=10)] == expected

    def test_count_and_chunk_ids_by_article_with_their_hashes(self, make_store: MakeStore) -> None:
        store = filled(make_store)
        store.upsert([chunk("old", 1)], [[1.0, 0.1, 0.0]], [{"content_hash": "hash-old"}])
        assert store.count() == 5
        assert store.chunk_ids_by_article(["old", "new", "missing"]) == {
            "old": {"old:0": "hash-old", "old:1": "hash-old"},
            "new": {"new:0": "hash-new"},
        }
        assert store.chunk_ids_by_article([]) == {}

    def test_upsert_is_idempotent_and_replaces_by_id(self, make_store: MakeStore) -> None:
        store = filled(make_store)
        store.upsert(ARCHIVE, VECTORS, [{"content_hash": f"hash-{c.article_id}"} for c in ARCHIVE])
        assert store.count() == len(ARCHIVE)
        changed = chunk("new", text="rewritten", source="Reuters")
        store.upsert([changed], [[1.0, 0.0, 0.0]], [{"content_hash": "hash-2"}])
        assert store.count() == len(ARCHIVE) and store.get_chunks(["new:0"]) == {"new:0": changed}
        assert store.chunk_ids_by_article(["new"]) == {"new": {"new:0": "hash-2"}}
        assert store.query(QUERY, SearchQuery("q"), n=1)[0].chunk.id in {"old:0", "new:0"}  # moved to the front

    def test_delete_removes_chunks_from_every_view(self, make_store: MakeStore) -> None:
        store = filled(make_store)
        store.delete(["old:0", "never-stored"])
        store.delete([])
        assert store.count() == 3
        assert "old:0" not in {h.chunk.id for h in store.query(QUERY, SearchQuery("q"), n=10)}
        assert store.get_chunks(["old:0"]) == {} and store.chunk_ids_by_article(["old"]) == {}
        assert "old:0" not in {c.id for c in store.iter_chunks()} and store.article_text("old") == ""

    def test_get_chunks_iter_chunks_and_article_text_agree(self, make_store: MakeStore) -> None:
        store = filled(make_store)
        pieces = [
            "The port reopened. Ships queued at dawn.",
            "Ships queued at dawn. By noon the quay was full.",
            "By noon the quay was full. Trade resumed.",
        ]
        parts = [chunk("long", i, text) for i, text in enumerate(pieces)]
        store.upsert(parts[::-1], [[0.0, 0.0, 1.0]] * 3, [{}] * 3)  # written out of order
        every = {c.id: c for c in store.iter_chunks()}
        assert set(every) == {c.id for c in [*ARCHIVE, *parts]} and store.count() == len(every)
        assert store.get_chunks(list(every)) == every
        assert store.get_chunks(["long:1", "missing:0"]) == {"long:1": parts[1]}
        # Consecutive chunks share sentences (the chunker's overlap): the article's text keeps them once.
        expected = "The port reopened. Ships queued at dawn. By noon the quay was full. Trade resumed."
        assert store.article_text("long") == expected
        assert store.article_text("old") == ARCHIVE[0].text

    def test_another_handle_sees_what_one_wrote(self, make_store: MakeStore) -> None:
        filled(make_store)
        again = make_store()
        assert again.count() == len(ARCHIVE) and again.get_chunks(["mid:0"]) == {"mid:0": ARCHIVE[1]}

    def test_the_chunking_model_is_recorded_with_the_first_chunks(self, make_store: MakeStore) -> None:
        store = make_store()
        assert store.chunked_with is None
        store.upsert(ARCHIVE[:1], VECTORS[:1], [{}])
        assert store.chunked_with == ENCODER.model and make_store().chunked_with == ENCODER.model

    def test_chunks_with_vectors_gives_only_the_articles_asked_for_in_order(self, make_store: MakeStore) -> None:
        store = filled(make_store)
        store.upsert([chunk("old", 1)], [[0.0, 1.0, 0.0]], [{}])
        found = store.chunks_with_vectors(["old", "undated", "missing", "old"])
        assert [c.id for c, _ in found] == ["old:0", "old:1", "undated:0"]
        assert found[0][0] == ARCHIVE[0] and found[2][0] == ARCHIVE[3]  # every field, as for a search
        for (_, got), want in zip(found, [VECTORS[0], [0.0, 1.0, 0.0], VECTORS[3]], strict=True):
            assert got == pytest.approx(want, abs=1e-6)
        assert store.chunks_with_vectors([]) == [] and store.chunks_with_vectors(["missing"]) == []
