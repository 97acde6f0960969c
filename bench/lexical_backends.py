"""Where the BM25 index could live once state moves to PostgreSQL: its postings as they are, or PostgreSQL's
own full-text search.

The evaluation slice's chunks (``make eval`` builds it; read from its Chroma) are indexed three ways:

- ``sqlite``: ``LexicalIndex`` on a SQLite file, the embedded default;
- ``postgres``: the same ``LexicalIndex``, its postings in a PostgreSQL database (``BYLINE_DATABASE_URL``);
- ``postgres-fts``: PostgreSQL's full-text search, a ``tsvector`` of each chunk's title and text (the
  ``english`` configuration) under a GIN index, the question as an OR of its words (``plainto_tsquery`` with
  its ``&`` turned into ``|``), ranked by ``ts_rank_cd``. Measured here only; Byline does not use it.

PostgreSQL is a throwaway cluster on loopback (``demo/postgres.py``: Debian's server, default settings but
fsync off). For each way: the build (every chunk written in one transaction, then ANALYZE), the load of the
per-chunk columns by a process that opens the index, and ``search`` latency over the question set twice: the
first pass reads each term's postings from the store, the second finds them in memory (the full-text search
asks PostgreSQL every time). Retrieval quality is judged as ``make eval`` judges it, on the topical set (the
questions with ``relevant`` articles): article MRR@10 and hit@5 over the top 50 chunks, with bootstrap
intervals and a paired test against ``sqlite``. Prints a table, writes reports/bench/lexical_backends.json
and a plot beside it.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import sqlalchemy as sa

from bench.common import RESULTS, ROOT, table, write_result

K = 50  # chunks per question: the BM25 depth the news retriever fuses
_FTS_TABLE = """CREATE TABLE fts_chunks (
    chunk_id TEXT PRIMARY KEY, published_ts BIGINT NOT NULL, dated BOOLEAN NOT NULL, body TSVECTOR NOT NULL
)"""
# OR semantics: plainto_tsquery joins the question's lexemes with & (every one required); | asks for any.
_FTS_SEARCH = sa.text(
    "SELECT chunk_id, ts_rank_cd(body, q) AS score"
    " FROM fts_chunks, CAST(replace(CAST(plainto_tsquery('english', :text) AS TEXT), '&', '|') AS TSQUERY) AS q"
    " WHERE body @@ q AND (published_ts <= :cut OR NOT dated)"
    " ORDER BY score DESC, chunk_id LIMIT :k"
)
_NO_CUT = 2**62


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Backend:
    """One way to index and search: ``build`` writes every chunk, ``open`` is what a new process does."""

    name = ""

    def build(self, chunks: Sequence[Any]) -> None:
        raise NotImplementedError

    def open(self) -> None:
        """A fresh handle, as a process that starts opens the index (loads what searching needs)."""

    def search(self, query: Any) -> list[tuple[str, float]]:
        raise NotImplementedError


class Postings(Backend):
    """Byline's ``LexicalIndex`` where ``where()`` says: a SQLite file or a PostgreSQL database."""

    def __init__(self, name: str, where: Callable[[], Any], analyze: Callable[[], None] = lambda: None) -> None:
        from backend.store.lexical import LexicalIndex

        self.name, self._where, self._analyze = name, where, analyze
        self._index = LexicalIndex(where())

    def build(self, chunks: Sequence[Any]) -> None:
        self._index.rebuild(chunks)
        self._analyze()

    def open(self) -> None:
        from backend.store.lexical import LexicalIndex

        self._index = LexicalIndex(self._where())
        self._index.warm()

    def search(self, query: Any) -> list[tuple[str, float]]:
        return self._index.search(query, K)


class FullText(Backend):
    name = "postgres-fts"

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def build(self, chunks: Sequence[Any]) -> None:
        rows = [
            {
                "id": c.id,
                "ts": int(c.published_at.timestamp()) if c.published_at else 0,
                "dated": c.published_at is not None,
                "text": f"{c.title}\n{c.text}",  # title words count too, as in the BM25 index
            }
            for c in chunks
        ]
        with self._engine.begin() as db:
            db.execute(sa.text("DROP TABLE IF EXISTS fts_chunks"))
            db.execute(sa.text(_FTS_TABLE))
            db.execute(sa.text("INSERT INTO fts_chunks VALUES (:id, :ts, :dated, to_tsvector('english', :text))"), rows)
            db.execute(sa.text("CREATE INDEX fts_chunks_body ON fts_chunks USING GIN (body)"))
        with self._engine.begin() as db:
            db.execute(sa.text("ANALYZE fts_chunks"))

    def search(self, query: Any) -> list[tuple[str, float]]:
        from backend.core.dates import end_of_day

        cut = end_of_day(query.as_of) if query.as_of is not None else _NO_CUT
        with self._engine.begin() as db:
            found = db.execute(_FTS_SEARCH, {"text": query.text, "cut": cut, "k": K}).all()
        return [(str(chunk_id), float(score)) for chunk_id, score in found]


def _measure(backend: Backend, chunks: Sequence[Any], queries: Sequence[Any]) -> dict[str, Any]:
    started = time.perf_counter()
    backend.build(chunks)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    backend.open()
    load_ms = (time.perf_counter() - started) * 1000
    passes: list[list[float]] = []
    results: list[list[tuple[str, float]]] = []
    for _ in ("first", "second"):
        timings, results = [], []
        for query in queries:
            started = time.perf_counter()
            results.append(backend.search(query))
            timings.append((time.perf_counter() - started) * 1000)
        passes.append(timings)

    def summary(timings: list[float]) -> dict[str, float]:
        return {"p50_ms": round(_percentile(timings, 0.5), 2), "p95_ms": round(_percentile(timings, 0.95), 2)}

    return {
        "build_s": round(build_s, 1),
        "open_ms": round(load_ms, 1),
        "first_pass": summary(passes[0]),
        "second_pass": summary(passes[1]),
        "results": results,
    }


def _judged(questions: Sequence[Any], judge: Any) -> list[tuple[int, set[str]]]:
    """The topical set: (position in the question list, relevant article ids visible as of its date)."""
    from eval.runner import TOPICAL

    judged = []
    for i, question in enumerate(questions):
        if question.relevant:
            _, articles = judge.relevant(question, TOPICAL)
            if articles:
                judged.append((i, articles))
    return judged


def _quality(
    results: list[list[tuple[str, float]]], judged: list[tuple[int, set[str]]], judge: Any
) -> dict[str, list[float]]:
    from eval.metrics import Ranked, first_per_article, hit_at, mrr_at

    mrr, hit5 = [], []
    for i, relevant in judged:
        articles = [judge.by_id[chunk_id].article_id for chunk_id, _ in results[i]]
        ranking = [
            item
            for _, item in first_per_article(
                [(a, Ranked(a in relevant, score)) for a, (_, score) in zip(articles, results[i], strict=True)]
            )
        ]
        mrr.append(mrr_at(ranking, 10))
        hit5.append(hit_at(ranking, 5))
    return {"article mrr@10": mrr, "article hit@5": hit5}


def plot(rows: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    fig, (speed, quality) = plt.subplots(1, 2, figsize=(11, 4.2))
    for offset, (key, label) in enumerate((("first_pass", "first pass"), ("second_pass", "second pass"))):
        xs = [i + (offset - 0.5) * 0.35 for i in range(len(names))]
        speed.bar(xs, [rows[n][key]["p50_ms"] for n in names], 0.35, label=f"p50, {label}")
        speed.scatter(xs, [rows[n][key]["p95_ms"] for n in names], marker="x", color="black", zorder=3)
    speed.set_xticks(range(len(names)), names)
    speed.set_yscale("log")
    speed.set_ylabel("ms per search (x: p95)")
    speed.set_title("search latency")
    speed.legend(fontsize=8)
    for offset, metric in enumerate(("article mrr@10", "article hit@5")):
        xs = [i + (offset - 0.5) * 0.35 for i in range(len(names))]
        estimates = [rows[n]["quality"][metric] for n in names]
        means = [e["mean"] for e in estimates]
        errors = [[m - e["low"] for m, e in zip(means, estimates, strict=True)],
                  [e["high"] - m for m, e in zip(means, estimates, strict=True)]]  # fmt: skip
        quality.bar(xs, means, 0.35, yerr=errors, capsize=3, label=metric)
    quality.set_xticks(range(len(names)), names)
    quality.set_ylim(0, 1)
    quality.set_title("topical set, 95% bootstrap intervals")
    quality.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "eval" / "rtqa2023")
    parser.add_argument("--questions", type=Path, help="Question set (default: questions.jsonl in the data dir).")
    args = parser.parse_args(argv)
    if not (args.data_dir / "chroma").exists():
        sys.exit(f"benchmark skipped: {args.data_dir} holds no archive (run `make eval` first)")
    from backend.core.types import SearchQuery
    from backend.services import Services, build_registry, build_store
    from backend.settings import Settings
    from backend.store.db import dispose_shared, shared_database
    from demo.postgres import PostgresServer, Unavailable
    from eval.metrics import bootstrap_ci, paired_comparison
    from eval.questions import load_questions
    from eval.runner import Judge

    questions = load_questions(args.questions or args.data_dir / "questions.jsonl")
    queries = [SearchQuery(q.question, k=K, as_of=q.as_of) for q in questions]
    settings = Settings(data_dir=args.data_dir)
    _progress(f"reading the chunks of {args.data_dir} ...")
    # What eval.runner.Judge reads of the services: the chunks and the registry's copies.
    judge = Judge(cast(Services, SimpleNamespace(store=build_store(settings), registry=build_registry(settings))))
    chunks = judge.chunks
    judged = _judged(questions, judge)
    _progress(f"{len(chunks):,} chunks, {len(questions)} questions, {len(judged)} in the topical set")

    try:
        server = PostgresServer()
        server.start()
    except Unavailable as why:
        sys.exit(f"benchmark skipped: no PostgreSQL ({why})")
    rows: dict[str, dict[str, Any]] = {}
    work = Path(tempfile.mkdtemp(prefix="byline-lexical-"))
    try:
        url = server.create_database()
        engine = sa.create_engine(url)

        def analyze() -> None:
            with engine.begin() as db:
                db.execute(sa.text("ANALYZE lexical_docs, lexical_postings"))

        backends: list[Backend] = [
            Postings("sqlite", lambda: work / "lexical.sqlite3"),
            Postings("postgres", lambda: shared_database(url), analyze),
            FullText(engine),
        ]
        for backend in backends:
            _progress(f"{backend.name}: building, then {len(queries)} questions twice ...")
            rows[backend.name] = _measure(backend, chunks, queries)
        engine.dispose()
        dispose_shared()
    finally:
        server.remove()
        shutil.rmtree(work, ignore_errors=True)

    base = _quality(rows["sqlite"]["results"], judged, judge)
    for name, row in rows.items():
        scores = _quality(row.pop("results"), judged, judge)
        row["quality"] = {metric: bootstrap_ci(values).as_dict() for metric, values in scores.items()}
        if name != "sqlite":
            row["against sqlite"] = {
                metric: {"difference": c.difference.as_dict(), "p_value": round(c.p_value, 4)}
                for metric, values in scores.items()
                for c in [paired_comparison(values, base[metric])]
            }
    by_speed = sorted(rows, key=lambda n: rows[n]["second_pass"]["p50_ms"])
    top = max(row["quality"]["article mrr@10"]["mean"] for row in rows.values())
    best = [n for n, row in rows.items() if row["quality"]["article mrr@10"]["mean"] == top]  # ties: all of them
    printed: list[tuple[str, ...]] = [
        ("backend", "build s", "open ms", "p50 ms 1st", "p95 ms 1st", "p50 ms 2nd", "p95 ms 2nd", "MRR@10", "hit@5")
    ]
    for name, row in rows.items():
        mrr, hit5 = row["quality"]["article mrr@10"], row["quality"]["article hit@5"]
        printed.append(
            (name, str(row["build_s"]), str(row["open_ms"]), str(row["first_pass"]["p50_ms"]),
             str(row["first_pass"]["p95_ms"]), str(row["second_pass"]["p50_ms"]), str(row["second_pass"]["p95_ms"]),
             f"{mrr['mean']:.3f} [{mrr['low']:.3f}, {mrr['high']:.3f}]",
             f"{hit5['mean']:.3f} [{hit5['low']:.3f}, {hit5['high']:.3f}]")
        )  # fmt: skip
    print(table(printed))
    for name, row in rows.items():
        for metric, c in row.get("against sqlite", {}).items():
            d = c["difference"]
            print(
                f"{name} - sqlite, {metric}: {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}], p = {c['p_value']}"
            )
    print(
        "by search speed, second pass p50: " + ", ".join(f"{n} {rows[n]['second_pass']['p50_ms']} ms" for n in by_speed)
    )
    print(f"best article MRR@10 ({top:.3f}): {' and '.join(best)}")
    path = write_result(
        "lexical_backends",
        {
            "date": datetime.now(UTC).date().isoformat(),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "data_dir": str(args.data_dir),
            "chunks": len(chunks),
            "questions": len(questions),
            "topical_questions": len(judged),
            "k": K,
            "backends": rows,
            "by_speed": by_speed,
            "best_mrr": best,
        },
    )
    plot(rows, RESULTS / "lexical_backends.png")
    print(f"written: {path} and {RESULTS / 'lexical_backends.png'}")


if __name__ == "__main__":
    main()
