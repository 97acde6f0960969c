"""Fixtures the contract suites share: a Chroma server for the session, the ONNX export made once."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from backend.embedding import OnnxEmbedder
from backend.settings import EmbeddingSettings
from tests.conftest import ChromaServer


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    with ChromaServer(tmp_path_factory.mktemp("contract-chroma") / "chroma") as server:
        yield server


@pytest.fixture(scope="session")
def onnx_embedder(tmp_path_factory: pytest.TempPathFactory) -> OnnxEmbedder:
    """The default model on ONNX Runtime, exported once for the session (the export takes seconds)."""
    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("needs pip install '.[onnx]'")
    embedder = OnnxEmbedder(EmbeddingSettings(backend="onnx"), cache_dir=tmp_path_factory.mktemp("onnx-cache"))
    embedder.load()
    return embedder
