"""The embedder contract against the PyTorch and ONNX Runtime backends and the query-side wrappers."""

from __future__ import annotations

import pytest

from backend.core.protocols import Embedder
from backend.embedding import BatchingEmbedder, CachedEmbedder, OnnxEmbedder, SentenceTransformerEmbedder
from tests.contracts.embedder import EmbedderContract


class TestTorchEmbedder(EmbedderContract):
    @pytest.fixture
    def subject(self, embedder: SentenceTransformerEmbedder) -> Embedder:
        return embedder


class TestOnnxEmbedder(EmbedderContract):
    @pytest.fixture
    def subject(self, onnx_embedder: OnnxEmbedder) -> Embedder:
        return onnx_embedder

    def test_it_is_the_same_encoder_as_the_torch_one(
        self, subject: Embedder, embedder: SentenceTransformerEmbedder
    ) -> None:
        assert subject.identity().compatible(embedder.identity()) and subject.identity().backend == "onnx"


class TestCachedEmbedder(EmbedderContract):
    @pytest.fixture
    def subject(self, embedder: SentenceTransformerEmbedder) -> Embedder:
        return CachedEmbedder(embedder, size=3)  # smaller than the texts: what it forgets is asked again


class TestBatchingEmbedder(EmbedderContract):
    @pytest.fixture
    def subject(self, embedder: SentenceTransformerEmbedder) -> Embedder:
        return BatchingEmbedder(embedder, max_texts=2)  # fewer than the texts: a batch is split
