"""The lexical store contract against the BM25 index in a SQLite file and in a PostgreSQL database (marked
``integration``: the cluster is started by the tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.store.db import shared_database
from backend.store.lexical import LexicalIndex
from tests.contracts.lexical_store import LexicalStoreContract, MakeStore


class TestSqliteLexicalIndex(LexicalStoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> MakeStore:
        return lambda: LexicalIndex(tmp_path / "lexical.sqlite3")


@pytest.mark.integration
class TestPostgresLexicalIndex(LexicalStoreContract):
    @pytest.fixture
    def make_store(self, postgres_url: str) -> MakeStore:
        return lambda: LexicalIndex(shared_database(postgres_url))
