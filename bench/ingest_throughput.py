"""Ingest throughput against the embedding model's own encode throughput on the same chunk texts.

Encoding is the ceiling: everything else an ingest does (parsing, cleaning, dedup, chunking,
Chroma and registry writes) is overhead on top of it. Both are measured in one run, on the
same machine state, with the model already loaded.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from backend.embedding import SentenceTransformerEmbedder
from backend.services import build_registry, build_store
from backend.settings import Settings
from bench.common import corpus_articles, table, write_result
from ingest.pipeline import Ingestor, IngestReport


class RecordingEmbedder(SentenceTransformerEmbedder):
    """The real embedder, keeping the texts it encoded and the time it spent on them."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.__dict__.update(inner.__dict__)
        self.texts: list[str] = []
        self.seconds = 0.0

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        started = time.perf_counter()
        vectors = super().embed_documents(texts)
        self.seconds += time.perf_counter() - started
        self.texts.extend(texts)
        return vectors


def run(n_articles: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "articles.jsonl"
        with source.open("w", encoding="utf-8") as fh:
            for article in corpus_articles(n_articles):
                fh.write(json.dumps(article) + "\n")
        settings = Settings(data_dir=Path(tmp) / "data")
        embedder = RecordingEmbedder(SentenceTransformerEmbedder(settings.embedding))
        embedder.load()
        embedder.embed_documents(["warm up"] * 8)
        embedder.texts.clear()
        embedder.seconds = 0.0

        def progress(report: IngestReport) -> None:
            print(f"\r  {report.progress_line()}", end="", file=sys.stderr, flush=True)

        ingestor = Ingestor(settings, embedder, build_store(settings), build_registry(settings))
        started = time.perf_counter()
        report = ingestor.ingest([source], progress=progress)
        ingest_seconds = time.perf_counter() - started
        print(file=sys.stderr)

        texts = list(embedder.texts)
        print(f"  encoding the same {len(texts)} texts alone...", file=sys.stderr)
        started = time.perf_counter()
        SentenceTransformerEmbedder.embed_documents(embedder, texts)
        encode_seconds = time.perf_counter() - started

    ingest_rate = report.texts_embedded / ingest_seconds
    encode_rate = len(texts) / encode_seconds
    return {
        "articles": n_articles,
        "articles_stored": report.articles_stored,
        "exact_copies": report.exact_copies,
        "failed": len(report.errors),
        "chunks": report.chunks_written,
        "texts_embedded": report.texts_embedded,
        "ingest_seconds": round(ingest_seconds, 2),
        "ingest_articles_per_s": round(report.records / ingest_seconds, 2),
        "ingest_chunks_per_s": round(report.chunks_written / ingest_seconds, 2),
        "encode_seconds_inside_ingest": round(embedder.seconds, 2),
        "encode_alone_seconds": round(encode_seconds, 2),
        "encode_alone_texts_per_s": round(encode_rate, 2),
        "ingest_vs_encode": round(ingest_rate / encode_rate, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, nargs="+", default=[1000])
    args = parser.parse_args()
    results = []
    for n in args.articles:
        print(f"ingest benchmark: {n} articles of the shared corpus", file=sys.stderr)
        results.append(run(n))
    columns = {
        "articles": "articles",
        "chunks": "chunks",
        "ingest_seconds": "ingest s",
        "ingest_articles_per_s": "articles/s",
        "ingest_chunks_per_s": "chunks/s",
        "encode_alone_texts_per_s": "encode-only texts/s",
        "ingest_vs_encode": "ingest/encode",
        "peak_rss_mib": "peak MiB",
    }
    rows: list[tuple[str, ...]] = [tuple(columns.values())]
    rows += [tuple(str(r[k]) for k in columns) for r in results]
    print(table(rows))
    print(f"written to {write_result('ingest', {'runs': results})}")


if __name__ == "__main__":
    main()
