"""The lexical store contract against the SQLite BM25 index."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.store.lexical import LexicalIndex
from tests.contracts.lexical_store import LexicalStoreContract, MakeStore


class TestSqliteLexicalIndex(LexicalStoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> MakeStore:
        return lambda: LexicalIndex(tmp_path / "lexical.sqlite3")
