from datetime import date

import pytest

from backend.core.types import Chunk, Hit, SearchFilters, SearchQuery
from backend.retrieval.hybrid import RRF_K, HybridRetriever
from backend.services import Services, build_retriever
from tests.conftest import QARATAPA_ID, QARATAPA_QUESTION


class Listed:
    """A retriever that returns a fixed ranking, recording the queries it was asked."""

    def __init__(self, *ids: str) -> None:
        self.ids = ids
        self.asked: list[SearchQuery] = []

    def retrieve(self, query: SearchQuery) -> list[Hit]:
        self.asked.append(query)
        return [Hit(Chunk(id=i, article_id=i, position=0, text=i), 1.0 - n / 10) for n, i in enumerate(self.ids)][
            : query.k
        ]


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    dense, lexical = Listed("a", "b", "c"), Listed("c", "d", "a")
    hits = HybridRetriever(dense, lexical, depth=20).retrieve(SearchQuery("q", k=3))
    assert [h.chunk.id for h in hits] == ["a", "c", "b"]
    assert hits[0].score == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 3))
    assert dense.asked[0].k == 20 and lexical.asked[0].k == 20  # both lists are read deeper than k


@pytest.mark.parametrize("name", ["dense", "bm25", "hybrid"])
def test_every_retriever_finds_the_qaratapa_article_and_respects_filters(demo_services: Services, name: str) -> None:
    retriever = build_retriever(name, demo_services.embedder, demo_services.store, demo_services.lexical)
    assert retriever.retrieve(SearchQuery(QARATAPA_QUESTION, k=3))[0].chunk.article_id == QARATAPA_ID
    early = retriever.retrieve(SearchQuery(QARATAPA_QUESTION, k=10, as_of=date(2023, 10, 3)))
    assert QARATAPA_ID not in {h.chunk.article_id for h in early}
    ledger = retriever.retrieve(SearchQuery("Peshmerga", k=10, filters=SearchFilters(sources=("TIGRIS-LEDGER",))))
    assert ledger and {h.chunk.source for h in ledger} == {"Tigris Ledger"}


def test_unknown_retriever_names_are_refused(demo_services: Services) -> None:
    with pytest.raises(ValueError, match="unknown retriever 'magic'"):
        build_retriever("magic", demo_services.embedder, demo_services.store, demo_services.lexical)
