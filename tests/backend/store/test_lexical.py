from datetime import UTC, date, datetime
from pathlib import Path

from backend.core.types import Chunk, SearchFilters, SearchQuery
from backend.store.lexical import LexicalIndex


def _chunk(cid: str, text: str, source: str | None = None, day: datetime | None = None) -> Chunk:
    return Chunk(id=cid, article_id=cid.split(":")[0], position=0, text=text, source=source, published_at=day)


def test_bm25_ranks_rare_terms_and_repeats_higher_and_filters_like_the_vector_store(tmp_path: Path) -> None:
    index = LexicalIndex(tmp_path / "lexical.sqlite3")
    index.add(
        [
            _chunk(
                "a:0",
                "Mardan Salih commands the Qaratapa sector.",
                "Northern Dispatch",
                datetime(2023, 10, 4, tzinfo=UTC),
            ),
            _chunk(
                "b:0", "The sector was quiet. The sector was calm.", "Tigris Ledger", datetime(2023, 6, 1, tzinfo=UTC)
            ),
            _chunk("c:0", "Qaratapa Qaratapa Qaratapa, an undated note.", None, None),
            _chunk("d:0", "Nothing relevant at all here.", "Harbor Post", datetime(2024, 1, 1, tzinfo=UTC)),
        ]
    )
    ranked = [cid for cid, _ in index.search(SearchQuery("Who commands the Qaratapa sector?"), 10)]
    assert ranked[0] == "a:0" and "d:0" not in ranked and set(ranked) == {"a:0", "b:0", "c:0"}
    early = [cid for cid, _ in index.search(SearchQuery("Qaratapa sector", as_of=date(2023, 10, 3)), 10)]
    assert set(early) == {"b:0", "c:0"}  # undated passes as_of
    ranged = SearchQuery(
        "sector", filters=SearchFilters(published_after=date(2023, 1, 1), sources=("northern-dispatch",))
    )
    assert [cid for cid, _ in index.search(ranged, 10)] == ["a:0"]
    assert index.search(SearchQuery("the and of"), 10) == []  # stopwords only


def test_replacing_and_deleting_chunks_updates_postings(tmp_path: Path) -> None:
    index = LexicalIndex(tmp_path / "lexical.sqlite3")
    index.add([_chunk("a:0", "ports and ships"), _chunk("b:0", "ships only")])
    index.add([_chunk("a:0", "trams and buses")])
    assert [cid for cid, _ in index.search(SearchQuery("ships"), 10)] == ["b:0"]
    assert [cid for cid, _ in index.search(SearchQuery("trams"), 10)] == ["a:0"]
    index.delete(["a:0"])
    assert index.ids() == {"b:0"} and index.search(SearchQuery("trams"), 10) == []
