"""Query latency, throughput, memory and cold start against archive size, embedded and http mode.

Archives of about 10k, 50k and 200k chunks are made from the evaluation slice (``make eval``
builds it: about 2,000 real articles of ../shared, 29k chunks). The smallest is a prefix of it;
the larger ones re-ingest the slice under new article and chunk ids until the size is reached.
The copies are written at the store level with the slice's own vectors (plus a little noise, so
the vector index does not see exact duplicates) instead of being embedded again: re-encoding 170k
chunks would take this machine about 40 minutes and change nothing the benchmark measures. Each
copy is a story of its own (its own cluster), so collapsing does not fold copies together.

For every size and mode: ``byline serve`` is started (cold start: process start to the first
answered ``/ask``), then ``/search`` and ``/ask`` are measured at 1, 4 and 16 concurrent clients
over loopback HTTP, each level with its own questions (so caches help only as they would in
use), and the server's peak memory is read from /proc. In http mode a ``chroma run`` serves the
same files. Prints a table, writes reports/bench/scale.json and a plot of latency against size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.common import RESULTS, ROOT, table, write_result
from bench.query_latency import _free_port, _questions, measure

SIZES = (10_000, 50_000, 200_000)
CLIENTS = (1, 4, 16)
_PAGE = 2_000
_NOISE = 0.01


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _source_chunks(source: Path) -> Iterator[tuple[list[str], list[Any], list[str], list[dict[str, Any]]]]:
    import chromadb
    from chromadb.config import Settings as ChromaClientSettings

    from backend.settings import Settings
    from backend.store.chroma import live_collection

    settings = Settings(data_dir=source)
    client = chromadb.PersistentClient(str(settings.chroma_dir), ChromaClientSettings(anonymized_telemetry=False))
    collection = client.get_collection(live_collection(client, settings.chroma.collection))  # after a reindex too
    offset = 0
    while True:
        page = collection.get(include=["embeddings", "documents", "metadatas"], limit=_PAGE, offset=offset)
        if not page["ids"]:
            return
        vectors: Any = page["embeddings"]
        metadatas: Any = page["metadatas"] or []
        yield page["ids"], list(vectors), list(page["documents"] or []), [dict(m) for m in metadatas]
        offset += len(page["ids"])


def build_archive(source: Path, target: Path, wanted: int) -> dict[str, Any]:
    """A data directory of about ``wanted`` chunks made from ``source`` (see the module docstring)."""
    from backend.services import build_lexical, build_registry, build_store
    from backend.settings import Settings
    from backend.store.chroma import chunk_from_record

    marker = target / "bench-archive.json"
    if marker.exists():
        built: dict[str, Any] = json.loads(marker.read_text(encoding="utf-8"))
        if built.get("wanted") == wanted:
            return built
    if target.exists():
        raise SystemExit(f"{target} exists but is no finished benchmark archive; remove it first")
    _progress(f"building a {wanted:,}-chunk archive in {target} ...")
    started = time.perf_counter()
    # Whole articles only: all chunks of the source, grouped by article, kept in memory (29k x 384 floats).
    by_article: dict[str, list[tuple[str, Any, str, dict[str, Any]]]] = {}
    for ids, vectors, documents, metadatas in _source_chunks(source):
        for row in zip(ids, vectors, documents, metadatas, strict=True):
            by_article.setdefault(str(row[3]["article_id"]), []).append(row)
    source_registry = build_registry(Settings(data_dir=source))
    records = source_registry.get(list(by_article))

    settings = Settings(data_dir=target)
    store, lexical, registry = build_store(settings), build_lexical(settings), build_registry(settings)
    rng = np.random.default_rng(7)
    written, copy = 0, 0
    while written < wanted:
        batch: list[tuple[str, Any, str, dict[str, Any]]] = []
        new_records = []
        for article_id, rows in by_article.items():
            if written >= wanted:
                break
            new_id = article_id if copy == 0 else f"{article_id}~{copy}"
            for chunk_id, vector, text, meta in rows:
                vec = np.asarray(vector, dtype=np.float32)
                if copy:
                    vec = vec + rng.normal(0.0, _NOISE, vec.shape).astype(np.float32)
                    vec /= np.linalg.norm(vec)
                new_meta = {**meta, "article_id": new_id, "cluster_id": new_id}
                batch.append((chunk_id if copy == 0 else f"{chunk_id}~{copy}", vec.tolist(), text, new_meta))
            if article_id in records:
                old = records[article_id]
                new_records.append(
                    replace(old, id=new_id, cluster_id=new_id, text_hash=f"{old.text_hash}~{copy}", signature=None)
                )
            written += len(rows)
            if len(batch) >= _PAGE:
                _write(store, lexical, batch, chunk_from_record)
                batch = []
                _progress(f"  {written:,} / {wanted:,} chunks ({time.perf_counter() - started:.0f}s)")
        _write(store, lexical, batch, chunk_from_record)
        registry.save(new_records, {}, [])
        copy += 1
    result = {"wanted": wanted, "chunks": store.count(), "articles": registry.count(), "copies_of_source": copy,
              "build_seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    marker.write_text(json.dumps(result), encoding="utf-8")
    return result


def _write(store: Any, lexical: Any, batch: list[tuple[str, Any, str, dict[str, Any]]], to_chunk: Any) -> None:
    if not batch:
        return
    ids, vectors, texts, metas = (list(x) for x in zip(*batch, strict=True))
    store._collection.upsert(ids=ids, embeddings=vectors, documents=texts, metadatas=metas)
    lexical.add(to_chunk(i, t, m) for i, t, m in zip(ids, texts, metas, strict=True))


def _rss_mib(pid: int) -> tuple[float, float]:
    """Current and peak resident memory of a process, from /proc (MiB)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return round(fields.get("VmRSS", 0.0), 1), round(fields.get("VmHWM", 0.0), 1)


def _wait(url: str, process: subprocess.Popen[bytes], path: str, body: dict[str, Any] | None, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited: {(process.stderr.read() if process.stderr else b'').decode()[-2000:]}")
        try:
            response = httpx.request("POST" if body else "GET", f"{url}{path}", json=body, timeout=30)
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{url}{path} did not answer within {limit_s:.0f} s")


def serve(data_dir: Path, mode: str, chroma_port: int | None) -> tuple[subprocess.Popen[bytes], str, float]:
    """``byline serve`` over ``data_dir``; returns it with its URL and its cold start (to a first /ask)."""
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BYLINE_DATA_DIR": str(data_dir), "BYLINE_API__RATE_PER_MINUTE": "0"}
    if mode == "http":
        env |= {"BYLINE_CHROMA__MODE": "http", "BYLINE_CHROMA__PORT": str(chroma_port)}
    started = time.perf_counter()
    command = [sys.executable, "-m", "byline", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    _wait(url, process, "/ask", {"question": "Who won the election?"}, 600)
    return process, url, time.perf_counter() - started


def start_chroma(data_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    chroma = Path(sys.executable).parent / "chroma"
    command = [str(chroma), "run", "--path", str(data_dir / "chroma"), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait(f"http://127.0.0.1:{port}", process, "/api/v2/heartbeat", None, 120)
    return process, port


def run_size(data_dir: Path, mode: str, questions: list[dict[str, Any]], ask_per_level: int) -> dict[str, Any]:
    chroma, chroma_port = start_chroma(data_dir) if mode == "http" else (None, None)
    try:
        server, url, cold = serve(data_dir, mode, chroma_port)
        try:
            levels = []
            per_level = len(questions) // len(CLIENTS)
            for i, clients in enumerate(CLIENTS):
                own = questions[i * per_level : (i + 1) * per_level]
                for endpoint, share in (("search", own), ("ask", own[:ask_per_level])):
                    _progress(f"  {mode}: /{endpoint}, {clients} client(s), {len(share)} questions ...")
                    levels.append(measure(url, endpoint, share, clients))
            rss, peak = _rss_mib(server.pid)
            chroma_rss = _rss_mib(chroma.pid) if chroma else None
        finally:
            server.terminate()
            server.wait(timeout=60)
    finally:
        if chroma:
            chroma.terminate()
            chroma.wait(timeout=60)
    return {"mode": mode, "cold_start_s": round(cold, 1), "api_rss_mib": rss, "api_peak_rss_mib": peak,
            "chroma_server_rss_mib": chroma_rss, "levels": levels}  # fmt: skip


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for ax, endpoint in zip(axes, ("search", "ask"), strict=True):
        for mode, style in (("embedded", "-"), ("http", "--")):
            for clients, colour in zip(CLIENTS, ("tab:blue", "tab:orange", "tab:red"), strict=True):
                points = sorted(
                    (r["chunks"], level["p50_ms"], level["p95_ms"])
                    for r in results
                    if r["mode"] == mode
                    for level in r["levels"]
                    if level["endpoint"] == endpoint and level["clients"] == clients
                )
                if points:
                    xs, p50, p95 = zip(*points, strict=True)
                    ax.plot(xs, p50, style, color=colour, marker="o", label=f"p50, {clients} client(s), {mode}")
                    ax.plot(xs, p95, style, color=colour, marker="x", alpha=0.45)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"/{endpoint}: p50 (o) and p95 (x) latency")
        ax.set_xlabel("chunks in the archive")
        ax.set_ylabel("ms")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT / "data" / "eval" / "rtqa2023")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--modes", nargs="+", choices=["embedded", "http"], default=["embedded", "http"])
    parser.add_argument("--ask-per-level", type=int, default=60, help="/ask questions per concurrency level.")
    parser.add_argument("--build-only", action="store_true", help="Make the archives, measure nothing.")
    args = parser.parse_args()
    if not (args.source / "chroma").exists():
        raise SystemExit(f"benchmark skipped: {args.source} holds no archive (run `make eval` first)")
    questions = _questions(args.source / "questions.jsonl")
    results = []
    for wanted in args.sizes:
        target = args.work_dir / f"archive-{wanted // 1000}k"
        built = build_archive(args.source, target, wanted)
        _progress(f"archive: {built}")
        for mode in [] if args.build_only else args.modes:
            _progress(f"{built['chunks']:,} chunks, {mode} mode:")
            results.append({"chunks": built["chunks"], "articles": built["articles"], **run_size(
                target, mode, questions, args.ask_per_level)})  # fmt: skip
    rows: list[tuple[str, ...]] = [
        (
            "chunks",
            "mode",
            "endpoint",
            "clients",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "req/s",
            "errors",
            "API peak MiB",
            "cold s",
        )
    ]
    for r in results:
        for level in r["levels"]:
            rows.append((f"{r['chunks']:,}", r["mode"], level["endpoint"], str(level["clients"]), str(level["p50_ms"]),
                         str(level["p95_ms"]), str(level["p99_ms"]), str(level["throughput_rps"]),
                         str(level["errors"]), str(r["api_peak_rss_mib"]), str(r["cold_start_s"])))  # fmt: skip
    if args.build_only:
        return
    print(table(rows))
    RESULTS.mkdir(parents=True, exist_ok=True)
    plot(results, RESULTS / "scale.png")
    print(f"written: {write_result('scale', {'results': results})} and {RESULTS / 'scale.png'}")


if __name__ == "__main__":
    main()
