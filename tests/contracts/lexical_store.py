"""What every ``LexicalStore`` (the BM25 index beside the vector store) does.

An implementation's suite subclasses ``LexicalStoreContract`` and provides ``make_store``: a callable that
opens the test's index, empty at first; each call opens the same index again, as another process would.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest

from backend.core.filters import matches
from backend.core.protocols import LexicalStore
from backend.core.types import Chunk, SearchFilters, SearchQuery

MakeStore = Callable[[], LexicalStore]


def chunk(cid: str, text: str, source: str | None = None, day: datetime | None = None) -> Chunk:
    return Chunk(id=cid, article_id=cid.split(":")[0], position=0, text=text, source=source, published_at=day)


ARCHIVE = [
    chunk("a:0", "Mardan Salih commands the Qaratapa sector.", "Northern Dispatch", datetime(2023, 10, 4, tzinfo=UTC)),
    chunk("b:0", "The sector was quiet. The sector was calm.", "Tigris Ledger", datetime(2023, 6, 1, tzinfo=UTC)),
    chunk("c:0", "Qaratapa Qaratapa Qaratapa, an undated note on the sector.", None, None),
    chunk("d:0", "Nothing relevant at all here.", "Harbor Post", datetime(2024, 1, 1, tzinfo=UTC)),
]
FILTERED = [
    SearchQuery("Qaratapa sector", as_of=date(2023, 10, 3)),
    SearchQuery("Qaratapa sector", filters=SearchFilters(published_after=date(2023, 1, 1))),
    SearchQuery("Qaratapa sector", filters=SearchFilters(published_before=date(2023, 10, 4))),
    SearchQuery("sector", filters=SearchFilters(published_after=date(2023, 1, 1), sources=("northern-dispatch",))),
    SearchQuery("sector", filters=SearchFilters(sources=("No Such Outlet",))),
]


def filled(make_store: MakeStore) -> LexicalStore:
    index = make_store()
    index.add(ARCHIVE)
    return index


def ids(index: LexicalStore, query: SearchQuery, k: int = 10) -> list[str]:
    return [cid for cid, _ in index.search(query, k)]


class LexicalStoreContract:
    def test_it_is_a_lexical_store(self, make_store: MakeStore) -> None:
        assert isinstance(make_store(), LexicalStore)

    def test_an_empty_index_finds_nothing(self, make_store: MakeStore) -> None:
        index = make_store()
        index.warm()
        assert index.count() == 0 and index.search(SearchQuery("Qaratapa"), 10) == []

    def test_the_passage_with_every_query_term_ranks_first_and_unrelated_ones_not_at_all(
        self, make_store: MakeStore
    ) -> None:
        index = filled(make_store)
        ranked = index.search(SearchQuery("Who commands the Qaratapa sector?"), 10)
        assert ranked[0][0] == "a:0" and {cid for cid, _ in ranked} == {"a:0", "b:0", "c:0"}
        scores = [score for _, score in ranked]
        assert scores == sorted(scores, reverse=True) and min(scores) > 0

    def test_at_most_k_hits(self, make_store: MakeStore) -> None:
        index = filled(make_store)
        assert ids(index, SearchQuery("Qaratapa sector"), k=2) == ids(index, SearchQuery("Qaratapa sector"))[:2]

    def test_a_query_of_stopwords_finds_nothing(self, make_store: MakeStore) -> None:
        assert filled(make_store).search(SearchQuery("the and of"), 10) == []

    @pytest.mark.parametrize("query", FILTERED, ids=lambda q: f"{q.as_of}-{q.filters}")
    def test_filters_keep_what_the_reference_keeps(self, make_store: MakeStore, query: SearchQuery) -> None:
        index = filled(make_store)
        unfiltered = set(ids(index, SearchQuery(query.text)))
        allowed = {c.id for c in ARCHIVE if matches(c.published_at, c.source, query)}
        assert set(ids(index, query)) == unfiltered & allowed

    def test_adding_replaces_by_id_and_delete_and_clear_remove(self, make_store: MakeStore) -> None:
        index = make_store()
        index.add([chunk("a:0", "ports and ships"), chunk("b:0", "ships only")])
        index.add([chunk("a:0", "trams and buses")])
        assert index.count() == 2
        assert ids(index, SearchQuery("ships")) == ["b:0"] and ids(index, SearchQuery("trams")) == ["a:0"]
        index.delete(["a:0", "never-added"])
        index.delete([])
        assert index.count() == 1 and ids(index, SearchQuery("trams")) == []
        index.clear()
        assert index.count() == 0 and ids(index, SearchQuery("ships")) == []

    def test_another_handle_sees_what_one_wrote_after_it_loaded(self, make_store: MakeStore) -> None:
        """An API process searches what an ingest process wrote since, without a restart."""
        reader = make_store()
        reader.warm()
        writer = filled(make_store)
        assert ids(reader, SearchQuery("Qaratapa")) == ids(writer, SearchQuery("Qaratapa")) != []
        writer.delete(["a:0"])
        assert "a:0" not in ids(reader, SearchQuery("Qaratapa")) and reader.count() == 3

    def test_a_rebuild_replaces_everything_and_a_current_index_is_left_alone(self, make_store: MakeStore) -> None:
        index = filled(make_store)
        fresh = [chunk("e:0", "Ferry timetable for the harbour.")]
        index.rebuild(fresh)
        assert index.count() == 1 and ids(index, SearchQuery("ferry timetable")) == ["e:0"]
        assert ids(index, SearchQuery("Qaratapa")) == []
        assert not index.stale and index.ensure_current(lambda: ARCHIVE) is False
        assert make_store().count() == 1  # seen by the next opener too

    def test_a_pending_mark_is_seen_by_every_handle_until_settled_or_rebuilt(self, make_store: MakeStore) -> None:
        writer, other = filled(make_store), make_store()
        assert not other.pending
        writer.mark_pending()  # a writer that dies here leaves the mark for whoever opens the index next
        assert make_store().pending and other.pending
        writer.settle()
        assert not other.pending
        writer.mark_pending()
        other.rebuild(ARCHIVE)
        assert not writer.pending and writer.count() == len(ARCHIVE)
