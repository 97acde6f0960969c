"""Encoding speed of the embedding backends on this machine: PyTorch and ONNX Runtime, thread counts.

Two workloads, both from the shared corpus: what an answer encodes (a question and ~32 sentences,
one call) and what ingest encodes (chunk-sized texts in batches of 64). Each configuration runs
the same texts after a warm-up; vectors are compared with PyTorch's (cosine).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time

import numpy as np

from backend.embedding import OnnxEmbedder, SentenceTransformerEmbedder
from backend.settings import EmbeddingSettings
from bench.common import ROOT, corpus_articles, table, write_result

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _workloads(n_articles: int) -> tuple[list[list[str]], list[str]]:
    articles = list(corpus_articles(n_articles))
    sentences = [s for a in articles for s in _SENTENCE.split(a.get("text") or "") if 30 < len(s) < 400]
    answers = [sentences[i : i + 33] for i in range(0, min(len(sentences), 33 * 30), 33)]
    chunks = []
    for a in articles:
        words = (a.get("text") or "").split()
        chunks += [" ".join(words[i : i + 150]) for i in range(0, len(words), 150)]
    return answers, chunks[:640]


def _measure(embedder: SentenceTransformerEmbedder, answers: list[list[str]], chunks: list[str]) -> dict[str, object]:
    embedder.embed_documents(answers[0])  # warm-up (and, for ONNX, the export or load)
    per_answer = []
    for group in answers:
        started = time.perf_counter()
        embedder.embed_documents(group)
        per_answer.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    vectors = embedder.embed_documents(chunks)
    chunk_rate = len(chunks) / (time.perf_counter() - started)
    return {
        "answer_p50_ms": round(statistics.median(per_answer), 1),
        "chunks_per_s": round(chunk_rate, 1),
        "vectors": np.asarray(vectors[:64]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=150)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    answers, chunks = _workloads(args.articles)
    print(f"{len(answers)} answers of 33 sentences, {len(chunks)} chunk texts", file=sys.stderr)
    cache = ROOT / "data" / "bench" / "model-cache"
    results = []
    reference = None
    for backend in ("torch", "onnx"):
        for threads in args.threads:
            settings = EmbeddingSettings(backend=backend, threads=threads)
            print(f"  {backend}, threads {threads or 'default'} ...", file=sys.stderr, flush=True)
            embedder = (
                OnnxEmbedder(settings, cache_dir=cache) if backend == "onnx" else SentenceTransformerEmbedder(settings)
            )
            measured = _measure(embedder, answers, chunks)
            vectors = measured.pop("vectors")
            reference = vectors if reference is None else reference
            cosine = float((np.asarray(vectors) * reference).sum(axis=1).min())
            results.append({"backend": backend, "threads": threads, **measured,
                            "min_cosine_vs_first": round(cosine, 6)})  # fmt: skip
    rows: list[tuple[str, ...]] = [("backend", "threads", "answer encode p50 ms", "chunks/s", "min cosine")]
    rows += [(str(r["backend"]), str(r["threads"]), str(r["answer_p50_ms"]), str(r["chunks_per_s"]),
              str(r["min_cosine_vs_first"])) for r in results]  # fmt: skip
    print(table(rows))
    print(f"written: {write_result('embedding_speed', {'results': results})}")


if __name__ == "__main__":
    main()
