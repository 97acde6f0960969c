"""What every ``Retriever`` does, over the demo archive.

An implementation's suite subclasses ``RetrieverContract`` and provides ``subject``: the retriever under
test over the demo archive (``demo_services``), which it must not write to.
"""

from __future__ import annotations

from datetime import date

import pytest

from backend.core.dates import end_of_day, start_of_day
from backend.core.protocols import Retriever
from backend.core.text import source_key
from backend.core.types import Hit, SearchFilters, SearchQuery
from backend.services import Services, build_retriever
from tests.conftest import QARATAPA_ID, QARATAPA_QUESTION

QUESTIONS = [QARATAPA_QUESTION, "Peshmerga", "harbour cargo inspections", "What did the minister say about prices?"]


def built(services: Services, spec: str) -> Retriever:
    """The retriever ``spec`` names (``"news:rerank=false"``) over ``services``' stores, as the server builds it."""
    return build_retriever(
        spec, services.settings, services.embedder, services.store, services.lexical, services.registry
    )


def assert_ranked(hits: list[Hit], k: int) -> None:
    assert len(hits) <= k
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert len({h.chunk.id for h in hits}) == len(hits)


class RetrieverContract:
    def test_it_is_a_retriever(self, subject: Retriever) -> None:
        assert isinstance(subject, Retriever)

    def test_the_article_that_answers_comes_first(self, subject: Retriever) -> None:
        assert subject.retrieve(SearchQuery(QARATAPA_QUESTION, k=3))[0].chunk.article_id == QARATAPA_ID

    @pytest.mark.parametrize("k", [1, 3, 10])
    @pytest.mark.parametrize("question", QUESTIONS)
    def test_at_most_k_hits_best_first(self, subject: Retriever, question: str, k: int) -> None:
        hits = subject.retrieve(SearchQuery(question, k=k))
        assert_ranked(hits, k)
        assert hits or question == QUESTIONS[-1]  # the archive names the first three

    def test_nothing_published_after_as_of(self, subject: Retriever) -> None:
        as_of = date(2023, 10, 3)
        hits = subject.retrieve(SearchQuery(QARATAPA_QUESTION, k=10, as_of=as_of))
        assert_ranked(hits, 10)
        assert QARATAPA_ID not in {h.chunk.article_id for h in hits}
        dated = [h.chunk.published_at for h in hits if h.chunk.published_at is not None]
        assert all(p.timestamp() <= end_of_day(as_of) for p in dated)

    def test_only_the_outlets_asked_for(self, subject: Retriever) -> None:
        hits = subject.retrieve(SearchQuery("Peshmerga", k=10, filters=SearchFilters(sources=("TIGRIS-LEDGER",))))
        assert_ranked(hits, 10)
        assert hits and {source_key(h.chunk.source or "") for h in hits} == {"tigrisledger"}
        nowhere = SearchQuery("Peshmerga", k=10, filters=SearchFilters(sources=("No Such Outlet",)))
        assert subject.retrieve(nowhere) == []

    def test_only_dated_articles_inside_a_date_range(self, subject: Retriever) -> None:
        after, before = date(2023, 10, 1), date(2023, 12, 31)
        query = SearchQuery("Peshmerga", k=10, filters=SearchFilters(published_after=after, published_before=before))
        hits = subject.retrieve(query)
        assert_ranked(hits, 10)
        for hit in hits:
            published = hit.chunk.published_at
            assert published is not None and start_of_day(after) <= published.timestamp() <= end_of_day(before)
