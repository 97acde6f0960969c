"""Ingest throughput against the embedding model's own encode throughput on the same chunk texts.

Encoding is the ceiling: everything else an ingest does (parsing, cleaning, dedup, chunking,
Chroma and registry writes) is overhead on top of it. Both are measured in one run, on the
same machine state, with the model already loaded.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from backend.embedding import SentenceTransformerEmbedder
from backend.services import Services, build_registry, build_services, build_store
from backend.settings import Settings
from bench.common import CORPUS, corpus_articles, table, write_result
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


def run(
    n_articles: int, tutorial_queries: int = 0, encode_share: float = 1.0
) -> tuple[dict[str, object], dict[str, object] | None]:
    """Byline's ingest of ``n_articles``, then the encoder alone on the texts it encoded; with
    ``tutorial_queries``, also the tutorial pipeline on the same articles and both query latencies (so the
    Byline ingest is timed once, not twice)."""
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
        if encode_share < 1.0:  # a random sample estimates the rate on all of them
            texts = random.Random(7).sample(texts, max(1, round(len(texts) * encode_share)))
        print(f"  encoding {len(texts)} of the same texts alone...", file=sys.stderr)
        started = time.perf_counter()
        SentenceTransformerEmbedder.embed_documents(embedder, texts)
        encode_seconds = time.perf_counter() - started
        pair = None
        if tutorial_queries:
            services = build_services(settings, embedder)
            pair = tutorial_pair(
                settings, services, report.chunks_written, ingest_seconds, n_articles, tutorial_queries, Path(tmp)
            )

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
        "encode_alone_texts": len(texts),
        "encode_alone_texts_per_s": round(encode_rate, 2),
        "ingest_vs_encode": round(ingest_rate / encode_rate, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }, pair


def _query_texts(limit: int) -> list[str]:
    questions = CORPUS.parent / "dev_questions.jsonl"
    with questions.open(encoding="utf-8") as fh:
        return [json.loads(line)["question"] for line, _ in zip(fh, range(limit), strict=False)]


def _latency_ms(search: Callable[[str], object], queries: list[str]) -> dict[str, float]:
    for query in queries[:3]:
        search(query)  # warm up
    times = []
    for query in queries:
        started = time.perf_counter()
        search(query)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50_ms": round(times[len(times) // 2], 1), "p95_ms": round(times[int(len(times) * 0.95)], 1)}


def tutorial_pair(
    settings: Settings,
    services: Services,
    byline_chunks: int,
    byline_s: float,
    n_articles: int,
    n_queries: int,
    tmp: Path,
) -> dict[str, object]:
    """The tutorial pipeline on the same articles, then in-process query latency of each (Byline's default
    retriever over the archive just ingested, the tutorial's similarity_search; k=10, the same questions)."""
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from backend.embedding import resolve_model
    from eval.baseline import CHUNK_OVERLAP, CHUNK_SIZE

    articles = list(corpus_articles(n_articles))
    queries = _query_texts(n_queries)
    byline_q = _latency_ms(lambda q: services.retriever.retrieve(services.reader.query(q, k=10, as_of=None)), queries)

    print("  the tutorial pipeline on the same articles ...", file=sys.stderr)
    started = time.perf_counter()
    embeddings = HuggingFaceEmbeddings(
        model_name=resolve_model(settings.embedding.model), encode_kwargs={"normalize_embeddings": True}
    )
    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    documents = [Document(page_content=a.get("text") or "", metadata={"url": a.get("url") or ""}) for a in articles]
    pieces = splitter.split_documents([d for d in documents if d.page_content.strip()])
    store = Chroma("tutorial", embedding_function=embeddings, persist_directory=str(tmp / "tutorial"))
    # One call per batch the client takes (Chroma refuses larger ones): what a tutorial user ends up writing.
    limit = store._client.get_max_batch_size()
    for start in range(0, len(pieces), limit):
        store.add_documents(pieces[start : start + limit])
    tutorial_s = time.perf_counter() - started
    tutorial_q = _latency_ms(lambda q: store.similarity_search(q, k=10), queries)
    return {
        "articles": n_articles,
        "byline_seconds": round(byline_s, 1),
        "byline_articles_per_s": round(n_articles / byline_s, 2),
        "byline_chunks": byline_chunks,
        "tutorial_seconds": round(tutorial_s, 1),
        "tutorial_articles_per_s": round(n_articles / tutorial_s, 2),
        "tutorial_chunks": len(pieces),
        "speedup": round(tutorial_s / byline_s, 2),
        "byline_query": byline_q,
        "tutorial_query": tutorial_q,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, nargs="+", default=[1000])
    parser.add_argument("--baseline-articles", type=int, default=1000, help="0 skips the tutorial comparison.")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument(
        "--encode-share",
        type=float,
        default=1.0,
        help="Share of the ingested texts encoded again alone for the ceiling (a seeded random sample).",
    )
    args = parser.parse_args()
    if args.baseline_articles and args.baseline_articles not in args.articles:
        parser.error("--baseline-articles must be one of --articles (the comparison reuses that ingest), or 0")
    results = []
    pair = None
    for n in args.articles:
        print(f"ingest benchmark: {n} articles of the shared corpus", file=sys.stderr)
        result, compared = run(n, args.queries if n == args.baseline_articles else 0, args.encode_share)
        results.append(result)
        pair = compared or pair
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
    if pair is not None:
        print(table([
            ("pipeline", "ingest s", "articles/s", "chunks", "query p50 ms", "query p95 ms"),
            ("byline", str(pair["byline_seconds"]), str(pair["byline_articles_per_s"]), str(pair["byline_chunks"]),
             str(pair["byline_query"]["p50_ms"]), str(pair["byline_query"]["p95_ms"])),  # type: ignore[index]
            ("tutorial", str(pair["tutorial_seconds"]), str(pair["tutorial_articles_per_s"]),
             str(pair["tutorial_chunks"]), str(pair["tutorial_query"]["p50_ms"]),  # type: ignore[index]
             str(pair["tutorial_query"]["p95_ms"])),  # type: ignore[index]
        ]))  # fmt: skip
        print(f"byline ingests {pair['speedup']}x the tutorial's articles/s")
    print(f"written to {write_result('ingest', {'runs': results, 'tutorial_comparison': pair})}")


if __name__ == "__main__":
    main()
