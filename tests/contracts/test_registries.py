"""The article store and conversation store contracts against the embedded SQLite file and a PostgreSQL database
(marked ``integration``: the cluster is started by the tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.answering.sessions import SessionStore
from backend.store.articles import ArticleRegistry
from backend.store.db import shared_database
from tests.contracts import article_store, conversation_store


class TestSqliteArticleRegistry(article_store.ArticleStoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> article_store.MakeStore:
        return lambda: ArticleRegistry(tmp_path / "articles.sqlite3")


@pytest.mark.integration
class TestPostgresArticleRegistry(article_store.ArticleStoreContract):
    @pytest.fixture
    def make_store(self, postgres_url: str) -> article_store.MakeStore:
        return lambda: ArticleRegistry(shared_database(postgres_url))


class TestSqliteSessionStore(conversation_store.ConversationStoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> conversation_store.MakeStore:
        return lambda max_age_days=0.0: SessionStore(tmp_path / "sessions.sqlite3", max_age_days)


@pytest.mark.integration
class TestPostgresSessionStore(conversation_store.ConversationStoreContract):
    @pytest.fixture
    def make_store(self, postgres_url: str) -> conversation_store.MakeStore:
        return lambda max_age_days=0.0: SessionStore(shared_database(postgres_url), max_age_days)
