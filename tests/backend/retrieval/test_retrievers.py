import pytest

from backend.core.types import Chunk, Hit, SearchQuery
from backend.retrieval.hybrid import RRF_K, HybridRetriever
from backend.services import Services
from tests.contracts.retriever import built


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


def test_unknown_retriever_names_are_refused(demo_services: Services) -> None:
    with pytest.raises(ValueError, match="unknown retriever 'magic'"):
        built(demo_services, "magic")
    with pytest.raises(ValueError, match="bad retriever option 'colour=red'"):
        built(demo_services, "news:colour=red")
    with pytest.raises(ValueError, match="time_mode"):
        built(demo_services, "news:time_mode=sometimes")
