"""The article store and conversation store contracts against their SQLite implementations."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.answering.sessions import SessionStore
from backend.store.articles import ArticleRegistry
from tests.contracts import article_store, conversation_store


class TestSqliteArticleRegistry(article_store.ArticleStoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> article_store.MakeStore:
        return lambda: ArticleRegistry(tmp_path / "articles.sqlite3")


class TestSqliteSessionStore(conversation_store.ConversationStoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> conversation_store.MakeStore:
        return lambda max_age_days=0.0: SessionStore(tmp_path / "sessions.sqlite3", max_age_days)
