"""/search and /ask on one machine's embedded archive and on a cluster: PostgreSQL, ``chroma run``, API replicas.

For each archive size (the benchmark archives of ``bench.scale``: about 50k and 200k chunks made from the
evaluation slice):

- **embedded**: one ``byline serve`` over the data directory (SQLite files, embedded Chroma);
- **cluster**: the same archive's state imported into a fresh PostgreSQL (``byline db import``, timed), its
  vectors served by ``chroma run``, two ``byline serve`` replicas with empty data directories
  (``demo/cluster.py``). Measured with 1 and 16 clients on one replica, then 16 clients spread over both.

Each level asks its own questions, so caches help only as they would in use. During each level the CPU
seconds of every process are read from /proc (API replicas, the Chroma server, all PostgreSQL processes, and
this load generator): on a machine this size they say which part saturates first, since they all share its
cores. The sizes of what the cluster stores (PostgreSQL's database, Chroma's folder) give the per-chunk costs
that docs/operations.md's sizing section builds on. Prints a table, writes reports/bench/replicas.json and
a plot.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import RESULTS, ROOT, table, write_result
from bench.query_latency import _questions, measure
from bench.scale import build_archive, serve
from demo.cluster import BYLINE, Cluster
from demo.postgres import PostgresServer, Unavailable

SIZES = (50_000, 200_000)
_TICK = os.sysconf("SC_CLK_TCK")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cpu_s(pid: int) -> float:
    """User plus system CPU seconds a process has used (0 for one that is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _du_mib(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


class CpuMeter:
    """CPU seconds per part of the system over one measured level."""

    def __init__(self, parts: dict[str, list[int]]) -> None:
        self._parts = parts

    def __enter__(self) -> CpuMeter:
        self._pg_start = {pid: _cpu_s(pid) for pid in _postgres_pids()}
        self._start = {name: sum(_cpu_s(p) for p in pids) for name, pids in self._parts.items()}
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._wall
        used = {name: sum(_cpu_s(p) for p in pids) - self._start[name] for name, pids in self._parts.items()}
        used["postgres"] = sum(_cpu_s(p) - self._pg_start.get(p, 0.0) for p in _postgres_pids())
        # Cores busy on average: 2.0 is all of this 2-core machine.
        self.cores = {name: round(seconds / self.wall_s, 2) for name, seconds in used.items()}


def _levels(
    urls: dict[str, list[str]], questions: list[dict[str, Any]], ask_n: int, parts: dict[str, list[int]]
) -> list[dict[str, Any]]:
    if len(urls) > 1:
        plan = [("1 replica", 1), ("1 replica", 16), ("2 replicas", 16)]
    else:
        plan = [("1 server", 1), ("1 server", 16)]
    per_level = len(questions) // len(plan)
    out = []
    for i, (spread, clients) in enumerate(plan):
        own = questions[i * per_level : (i + 1) * per_level]
        for endpoint, share in (("search", own), ("ask", own[:ask_n])):
            _progress(f"  /{endpoint}, {clients} client(s) on {spread}, {len(share)} questions ...")
            with CpuMeter(parts) as meter:
                level = measure(urls[spread], endpoint, share, clients)
            out.append({**level, "spread": spread, "cores_busy": meter.cores})
    return out


def run_embedded(archive: Path, questions: list[dict[str, Any]], ask_n: int) -> dict[str, Any]:
    server, url, cold = serve(archive, "embedded", None)
    try:
        levels = _levels({"1 server": [url]}, questions, ask_n, {"api": [server.pid], "load": [os.getpid()]})
    finally:
        server.terminate()
        server.wait(timeout=60)
    return {"mode": "embedded", "cold_start_s": round(cold, 1), "levels": levels}


def run_cluster(archive: Path, questions: list[dict[str, Any]], ask_n: int) -> dict[str, Any]:
    postgres = PostgresServer()
    postgres.start()
    try:
        url = postgres.create_database("byline")
        _progress("  importing the archive's state into PostgreSQL (byline db import) ...")
        started = time.perf_counter()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "BYLINE_DATABASE_URL": url,
               "BYLINE_DATA_DIR": tempfile.mkdtemp(prefix="byline-import-")}  # fmt: skip
        subprocess.run([*BYLINE, "db", "import", str(archive)], env=env, check=True, cwd=ROOT)
        imported_s = time.perf_counter() - started
        with psycopg_connect(postgres) as db:
            database_mib = round(db.execute("SELECT pg_database_size('byline')").fetchone()[0] / 2**20, 1)
            tables = {
                name: round(size / 2**20, 1)
                for name, size in db.execute(
                    "SELECT relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n"
                    " ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 2 DESC"
                )
            }
        root = Path(tempfile.mkdtemp(prefix="byline-bench-cluster-"))
        with Cluster(
            root, replicas=2, chroma_path=archive / "chroma", database=url, env={"BYLINE_API__RATE_PER_MINUTE": "0"}
        ) as cluster:
            a, b = cluster.servers
            for replica in cluster.servers:  # the first question loads the models and the lexical columns
                httpx.post(f"{replica.url}/ask", json={"question": "Who won the election?"}, timeout=600)
            assert cluster.chroma is not None and a.process is not None and b.process is not None
            parts = {"api a": [a.process.pid], "api b": [b.process.pid], "chroma": [cluster.chroma.pid],
                     "load": [os.getpid()]}  # fmt: skip
            levels = _levels({"1 replica": [a.url], "2 replicas": [a.url, b.url]}, questions, ask_n, parts)
    finally:
        postgres.remove()
    return {"mode": "cluster", "import_s": round(imported_s, 1), "postgres_mib": database_mib,
            "postgres_tables_mib": tables, "chroma_mib": _du_mib(archive / "chroma"), "levels": levels}  # fmt: skip


def psycopg_connect(postgres: PostgresServer) -> Any:
    import psycopg

    return psycopg.connect(f"host=127.0.0.1 port={postgres.port} user=byline dbname=byline", autocommit=True)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, endpoint in zip(axes, ("search", "ask"), strict=True):
        labels, p50, p95 = [], [], []
        for r in results:
            for level in r["levels"]:
                if level["endpoint"] == endpoint:
                    labels.append(f"{r['chunks'] // 1000}k {r['mode']}\n{level['clients']}c {level['spread']}")
                    p50.append(level["p50_ms"])
                    p95.append(level["p95_ms"])
        xs = range(len(labels))
        ax.bar([x - 0.2 for x in xs], p50, width=0.4, label="p50")
        ax.bar([x + 0.2 for x in xs], p95, width=0.4, label="p95", alpha=0.6)
        ax.set_xticks(list(xs), labels, fontsize=6, rotation=60, ha="right")
        ax.set_yscale("log")
        ax.set_ylabel("ms")
        ax.set_title(f"/{endpoint}: embedded vs PostgreSQL + chroma run + replicas")
        ax.grid(True, axis="y", which="both", alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT / "data" / "eval" / "rtqa2023")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--modes", nargs="+", choices=["embedded", "cluster"], default=["embedded", "cluster"])
    parser.add_argument("--ask-per-level", type=int, default=40, help="/ask questions per level.")
    args = parser.parse_args()
    if not (args.source / "chroma").exists():
        raise SystemExit(f"benchmark skipped: {args.source} holds no archive (run `make eval` first)")
    questions = _questions(args.source / "questions.jsonl")
    results = []
    for wanted in args.sizes:
        archive = args.work_dir / f"archive-{wanted // 1000}k"
        built = build_archive(args.source, archive, wanted)
        for mode in args.modes:
            _progress(f"{built['chunks']:,} chunks, {mode}:")
            try:
                run = run_embedded(archive, questions, args.ask_per_level) if mode == "embedded" else run_cluster(
                    archive, questions, args.ask_per_level)  # fmt: skip
            except Unavailable as why:
                _progress(f"  skipped: no PostgreSQL ({why})")
                continue
            results.append({"chunks": built["chunks"], "articles": built["articles"], **run})
    rows: list[tuple[str, ...]] = [("chunks", "mode", "endpoint", "clients", "spread", "p50 ms", "p95 ms", "req/s",
                                    "errors", "cores busy")]  # fmt: skip
    for r in results:
        for level in r["levels"]:
            busy = " ".join(f"{k} {v}" for k, v in level["cores_busy"].items())
            rows.append((f"{r['chunks']:,}", r["mode"], level["endpoint"], str(level["clients"]), level["spread"],
                         str(level["p50_ms"]), str(level["p95_ms"]), str(level["throughput_rps"]),
                         str(level["errors"]), busy))  # fmt: skip
    print(table(rows))
    for r in results:
        if r["mode"] == "cluster":
            print(f"{r['chunks']:,} chunks: import {r['import_s']} s, PostgreSQL {r['postgres_mib']} MiB "
                  f"({r['postgres_tables_mib']}), Chroma {r['chroma_mib']} MiB")  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    plot(results, RESULTS / "replicas.png")
    print(f"written: {write_result('replicas', {'results': results})} and {RESULTS / 'replicas.png'}")


if __name__ == "__main__":
    main()
