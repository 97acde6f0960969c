from datetime import date

import pytest

from backend.core.protocols import Retriever
from backend.core.types import Chunk, Hit, SearchFilters, SearchQuery
from backend.retrieval.hybrid import RRF_K, HybridRetriever
from backend.services import RETRIEVERS, Services, build_retriever
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


def _build(services: Services, spec: str) -> Retriever:
    return build_retriever(
        spec, services.settings, services.embedder, services.store, services.lexical, services.registry
    )


@pytest.mark.parametrize("name", RETRIEVERS)
def test_every_retriever_finds_the_qaratapa_article_and_respects_filters(demo_services: Services, name: str) -> None:
    retriever = _build(demo_services, name)
    assert retriever.retrieve(SearchQuery(QARATAPA_QUESTION, k=3))[0].chunk.article_id == QARATAPA_ID
    early = retriever.retrieve(SearchQuery(QARATAPA_QUESTION, k=10, as_of=date(2023, 10, 3)))
    assert QARATAPA_ID not in {h.chunk.article_id for h in early}
    ledger = retriever.retrieve(SearchQuery("Peshmerga", k=10, filters=SearchFilters(sources=("TIGRIS-LEDGER",))))
    assert ledger and {h.chunk.source for h in ledger} == {"Tigris Ledger"}


def test_unknown_retriever_names_are_refused(demo_services: Services) -> None:
    with pytest.raises(ValueError, match="unknown retriever 'magic'"):
        _build(demo_services, "magic")
    with pytest.raises(ValueError, match="bad retriever option 'colour=red'"):
        _build(demo_services, "news:colour=red")
    with pytest.raises(ValueError, match="time_mode"):
        _build(demo_services, "news:time_mode=sometimes")
