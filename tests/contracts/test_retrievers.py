"""The retriever contract against every retriever the settings can name, over the demo archive."""

from __future__ import annotations

import pytest

from backend.core.protocols import Retriever
from backend.services import RETRIEVERS, Services
from tests.contracts.retriever import RetrieverContract, built


class _Named(RetrieverContract):
    spec = ""  # the retriever's name in the settings

    @pytest.fixture
    def subject(self, demo_services: Services) -> Retriever:
        return built(demo_services, self.spec)


class TestDenseRetriever(_Named):
    spec = "dense"


class TestBM25Retriever(_Named):
    spec = "bm25"


class TestHybridRetriever(_Named):
    spec = "hybrid"


class TestNewsRetriever(_Named):
    spec = "news"


def test_every_retriever_the_settings_name_runs_the_contract() -> None:
    assert sorted(suite.spec for suite in _Named.__subclasses__()) == sorted(RETRIEVERS)
