"""The vector store contract against Chroma, embedded and as a real ``chroma run`` server."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from backend.settings import ChromaSettings
from backend.store.chroma import ChromaStore, open_client
from tests.conftest import ChromaServer
from tests.contracts.vector_store import ENCODER, MakeStore, VectorStoreContract


class TestEmbeddedChroma(VectorStoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> MakeStore:
        return lambda: ChromaStore(open_client(ChromaSettings(), tmp_path / "chroma"), "contract", ENCODER)


@pytest.mark.integration
class TestHttpChroma(VectorStoreContract):
    @pytest.fixture
    def make_store(self, chroma_server: ChromaServer) -> MakeStore:
        settings = ChromaSettings(mode="http", port=chroma_server.port)
        name = f"contract_{uuid.uuid4().hex[:12]}"  # one server for the session, a collection per test
        return lambda: ChromaStore(open_client(settings, Path("unused")), name, ENCODER)
