"""The embedding backends agree, and the query-side cache returns what the model would."""

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backend.embedding import CachedEmbedder, OnnxEmbedder, SentenceTransformerEmbedder
from backend.settings import EmbeddingSettings

TEXTS = [
    "Who commands the Qaratapa-Hamrin sector?",
    "Mardan Salih, the Peshmerga commander of the sector, said cooperation had improved security.",
    "Ardenvale Rovers won the regional cup final on Sunday.",
    "x",
    "Kirkuk " * 400,  # beyond the model's 256 word pieces: both must truncate alike
    "Iraqi and Peshmerga officers say joint work has calmed the front. " * 6,
]


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="needs pip install '.[onnx]'")
def test_onnx_vectors_match_pytorch(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    onnx = OnnxEmbedder(EmbeddingSettings(backend="onnx", batch_size=4), cache_dir=tmp_path)
    exported = onnx.embed_documents(TEXTS)
    reference = np.asarray(embedder.embed_documents(TEXTS))
    cosine = (np.asarray(exported) * reference).sum(axis=1)
    assert cosine.min() > 0.999
    assert list(tmp_path.glob("onnx/*.onnx")) and not list(tmp_path.glob("onnx/*.partial"))
    again = OnnxEmbedder(EmbeddingSettings(backend="onnx"), cache_dir=tmp_path)  # reuses the export
    assert np.allclose(again.embed_query(TEXTS[0]), exported[0], atol=1e-5)
    assert onnx.count_tokens(TEXTS[:2]) == embedder.count_tokens(TEXTS[:2])


def test_the_cache_answers_repeats_without_the_model_and_forgets_the_oldest(
    embedder: SentenceTransformerEmbedder,
) -> None:
    cached = CachedEmbedder(embedder, size=3)
    first = cached.embed_documents(TEXTS[:3])
    assert (cached.hits, cached.misses) == (0, 3)
    assert cached.embed_documents([TEXTS[1], TEXTS[1]]) == [first[1], first[1]]
    assert cached.hits == 2
    assert np.allclose(cached.embed_query(TEXTS[0]), embedder.embed_query(TEXTS[0]), atol=1e-6)
    cached.embed_documents([TEXTS[3]])  # a fourth text pushes out the least recently used (TEXTS[2])
    misses = cached.misses
    cached.embed_documents([TEXTS[2]])
    assert cached.misses == misses + 1


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_concurrent_callers_get_the_vectors_a_lone_caller_gets(
    backend: str, tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    """The API encodes from many threads at once. A fast tokenizer keeps its padding and truncation
    settings on one shared object, so unguarded concurrent calls padded one caller's batch to another's
    length and failed ("expected sequence of length 23 at dim 1 (got 15)": a 500 under load)."""
    if backend == "onnx" and importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("needs pip install '.[onnx]'")
    shared = embedder if backend == "torch" else OnnxEmbedder(EmbeddingSettings(backend="onnx"), cache_dir=tmp_path)
    batches = [[f"{word} " * (n % 13 + 1), TEXTS[n % len(TEXTS)]] for n, word in enumerate(["Kirkuk", "Erbil"] * 40)]
    expected = [np.asarray(shared.embed_documents(batch)) for batch in batches]
    tokens = [shared.count_tokens(batch) for batch in batches]

    def call(n: int) -> tuple[Any, list[int]]:
        return np.asarray(shared.embed_documents(batches[n])), shared.count_tokens(batches[n])

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, range(len(batches))))
    for n, (vectors, counted) in enumerate(results):
        assert np.allclose(vectors, expected[n], atol=1e-5), n
        assert counted == tokens[n], n
