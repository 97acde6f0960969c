"""Query latency of a real API server: ``/search`` and ``/ask`` over loopback HTTP.

Starts ``byline serve`` on a free loopback port over an existing data directory (by default
the evaluation slice that ``make eval`` builds), waits until it answers, warms it with a few
questions, then sends every question of the question set from 1 or more concurrent clients
and reports p50/p95/p99 latency and throughput. The server process is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, table, write_result

_WARMUP = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _questions(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        sys.exit(f"benchmark skipped: {path} is absent (run `make eval` first to build the evaluation slice)")
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def _body(endpoint: str, question: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"query" if endpoint == "search" else "question": question["question"]}
    if question.get("as_of"):
        body["as_of"] = question["as_of"][:10]
    return body


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(url: str | Sequence[str], endpoint: str, questions: list[dict[str, Any]], clients: int) -> dict[str, Any]:
    """Every question once, spread over ``clients`` threads each with its own connection; given several servers
    (replicas), client ``i`` talks to server ``i`` modulo their number."""
    urls = [url] if isinstance(url, str) else list(url)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    queue = list(questions)

    def worker(url: str) -> None:
        nonlocal errors
        with httpx.Client(base_url=url, timeout=120) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    question = queue.pop()
                started = time.perf_counter()
                response = client.post(f"/{endpoint}", json=_body(endpoint, question))
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    errors += response.status_code != 200

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(urls[i % len(urls)],)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {
        "endpoint": endpoint,
        "clients": clients,
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": round(_percentile(latencies, 0.50), 1),
        "p95_ms": round(_percentile(latencies, 0.95), 1),
        "p99_ms": round(_percentile(latencies, 0.99), 1),
        "mean_ms": round(statistics.fmean(latencies), 1),
        "throughput_rps": round(len(latencies) / wall, 1),
    }


def start_server(data_dir: Path, extra_env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "BYLINE_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", **extra_env}
    command = [sys.executable, "-m", "byline", "serve", "--host", "127.0.0.1", "--port", str(port)]
    env.setdefault("BYLINE_API__RATE_PER_MINUTE", "0")  # a load generator is not a runaway client
    server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"server exited early: {(server.stderr.read() if server.stderr else b'').decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.kill()
    sys.exit("server did not answer /health within 300 s")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "eval" / "rtqa2023")
    parser.add_argument("--questions", type=Path, help="Question set (default: questions.jsonl in the data dir).")
    parser.add_argument("--endpoint", action="append", choices=["search", "ask"], help="Repeatable; default both.")
    parser.add_argument("--clients", type=int, action="append", help="Concurrent clients, repeatable; default 1.")
    parser.add_argument("--retriever", help="BYLINE_RETRIEVAL__RETRIEVER for the server (default: its settings).")
    args = parser.parse_args(argv)

    questions = _questions(args.questions or args.data_dir / "questions.jsonl")
    extra = {"BYLINE_RETRIEVAL__RETRIEVER": args.retriever} if args.retriever else {}
    print(f"starting byline serve over {args.data_dir} ...", file=sys.stderr, flush=True)
    server, url = start_server(args.data_dir, extra)
    results = []
    try:
        for endpoint in args.endpoint or ["search", "ask"]:
            measure(url, endpoint, questions[:_WARMUP], 1)
            for clients in args.clients or [1]:
                print(f"{endpoint}: {len(questions)} questions, {clients} client(s) ...", file=sys.stderr, flush=True)
                results.append(measure(url, endpoint, questions, clients))
    finally:
        server.terminate()
        server.wait(timeout=30)
    rows: list[tuple[str, ...]] = [("endpoint", "clients", "requests", "errors", "p50 ms", "p95 ms", "p99 ms", "req/s")]
    rows += [
        (r["endpoint"], str(r["clients"]), str(r["requests"]), str(r["errors"]), str(r["p50_ms"]), str(r["p95_ms"]),
         str(r["p99_ms"]), str(r["throughput_rps"]))
        for r in results
    ]  # fmt: skip
    print(table(rows))
    path = write_result(
        "query_latency",
        {"data_dir": str(args.data_dir), "retriever": args.retriever or "settings default", "results": results},
    )
    print(f"written: {path}")


if __name__ == "__main__":
    main()
