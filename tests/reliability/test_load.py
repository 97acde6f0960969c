"""Load: 16 concurrent clients (a bounded asyncio client of our own, loopback only) ask and search a real
``byline serve`` while an ingest runs through ``POST /articles`` on the same server: no 5xx and no
transport error, no citation of an article that is not yet complete, and the latency percentiles
reported. (``make soak``: 60 s; ``make test``: 10 s.)

"Complete" is what the registry says: it lists an article only once all its chunks are stored. A
citation of an article whose ``POST /articles`` has not returned yet is checked at once with
``GET /articles/{id}``, which answers from the registry: the article must be there, and its text must
hold the cited snippet.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import ROOT
from tests.reliability.conftest import ServeProcess, progress, record_figures

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CLIENTS = 16
DEMO_QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "demo" / "questions.jsonl").open(encoding="utf-8")]


def _article(i: int) -> dict[str, Any]:
    rng = random.Random(i)
    text = " ".join(
        f"Inspector qlx{i} of the Port Veyra customs office cleared {rng.randint(2, 90)} containers of "
        f"{rng.choice(['citrus', 'steel', 'grain', 'timber', 'coffee'])} on day {d}. "
        f"The shipment {i}-{d} was held for {rng.randint(1, 9)} hours before release."
        for d in range(12)
    )
    return {"id": f"load-{i}", "title": f"Customs inspector qlx{i} clears cargo at Port Veyra", "text": text,
            "source": "Veyra Customs Bulletin", "published_at": f"2024-02-{i % 28 + 1:02d}"}  # fmt: skip


@dataclass
class Record:
    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: dict[str, int] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"/ask": [], "/search": []})
    citations: int = 0
    in_flight_citations: int = 0
    incomplete: list[str] = field(default_factory=list)
    acked: dict[str, float] = field(default_factory=dict)  # article id -> when its POST returned
    ingest_statuses: list[int] = field(default_factory=list)
    articles_posted: int = 0


def _ingest(url: str, record: Record, stop: threading.Event, batch: int) -> None:
    """Post new articles, a batch at a time, until told to stop; note when each was acknowledged."""
    number = 0
    with httpx.Client(base_url=url, timeout=300) as client:
        while not stop.is_set():
            articles = [_article(number + i) for i in range(batch)]
            number += batch
            reply = client.post("/articles", json={"articles": articles})
            record.ingest_statuses.append(reply.status_code)
            if reply.status_code == 200:
                done = time.monotonic()
                for result in reply.json()["results"]:
                    if result["status"] == "new":
                        record.acked[result["id"]] = done
                record.articles_posted += batch


async def _client(client: httpx.AsyncClient, worker: int, deadline: float, record: Record, posted: list[int]) -> None:
    rng = random.Random(worker)
    while time.monotonic() < deadline:
        if rng.random() < 0.5 and posted[0]:
            question = f"How many containers did inspector qlx{rng.randrange(posted[0] + 8)} clear?"
        else:
            question = rng.choice(DEMO_QUESTIONS)
        route = "/ask" if rng.random() < 0.7 else "/search"
        body = {"question": question} if route == "/ask" else {"query": question, "k": 10}
        started = time.monotonic()
        try:
            reply = await client.post(route, json=body)
        except httpx.TransportError as exc:
            record.transport_errors[type(exc).__name__] = record.transport_errors.get(type(exc).__name__, 0) + 1
            continue
        received = time.monotonic()
        record.statuses[reply.status_code] = record.statuses.get(reply.status_code, 0) + 1
        if reply.status_code != 200:
            continue
        record.latencies[route].append(received - started)
        if route == "/ask":
            for citation in reply.json()["citations"]:
                record.citations += 1
                article_id = citation["article_id"]
                acked = record.acked.get(article_id)
                if not article_id.startswith("load-") or (acked is not None and acked <= received):
                    continue
                record.in_flight_citations += 1
                stored = await client.get(f"/articles/{article_id}")
                if stored.status_code != 200 or citation["snippet"] not in stored.json()["text"]:
                    record.incomplete.append(f"{article_id}: {stored.status_code} {citation['snippet'][:80]!r}")


async def _load(url: str, seconds: float, record: Record, posted: list[int]) -> None:
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(_client(client, w, deadline, record, posted) for w in range(CLIENTS)))


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else 0.0


def _run(demo_copy: Path, tmp_path: Path, seconds: float, batch: int) -> None:
    server = ServeProcess(demo_copy, tmp_path / "serve.log")
    record, stop = Record(), threading.Event()
    posted = [0]
    try:
        ingest = threading.Thread(target=_ingest, args=(server.url, record, stop, batch), daemon=True)
        ingest.start()

        def count_posted() -> None:
            while not stop.is_set():
                posted[0] = record.articles_posted
                time.sleep(0.2)

        threading.Thread(target=count_posted, daemon=True).start()
        progress(f"{CLIENTS} clients for {seconds:.0f} s while articles are posted in batches of {batch}")
        asyncio.run(_load(server.url, seconds, record, posted))
        stop.set()
        ingest.join(timeout=300)
        archive = httpx.get(f"{server.url}/archive", timeout=30).json()
    finally:
        server.stop()

    asks, searches = record.latencies["/ask"], record.latencies["/search"]
    figures = {
        "clients": CLIENTS,
        "seconds": seconds,
        "requests": sum(record.statuses.values()) + sum(record.transport_errors.values()),
        "statuses": record.statuses,
        "transport_errors": record.transport_errors,
        "ask_p50_ms": _percentile(asks, 50), "ask_p95_ms": _percentile(asks, 95), "ask_p99_ms": _percentile(asks, 99),
        "search_p50_ms": _percentile(searches, 50), "search_p95_ms": _percentile(searches, 95),
        "throughput_per_s": round((len(asks) + len(searches)) / seconds, 1),
        "articles_ingested_meanwhile": len(record.acked),
        "ingest_statuses": sorted(set(record.ingest_statuses)),
        "citations": record.citations,
        "citations_of_articles_being_ingested": record.in_flight_citations,
        "citations_of_incomplete_articles": len(record.incomplete),
        "archive_articles_after": archive["articles"],
    }  # fmt: skip
    record_figures(f"load_{seconds:.0f}s", figures)
    assert not record.transport_errors, record.transport_errors
    assert not [s for s in record.statuses if s >= 500], record.statuses
    assert set(record.statuses) == {200}, record.statuses  # no rate limit here: everything answered
    assert set(record.ingest_statuses) == {200} and len(record.acked) >= batch, record.ingest_statuses
    assert not record.incomplete, record.incomplete[:5]
    assert asks and searches
    assert archive["articles"] == 24 + len(record.acked)


def test_sixteen_clients_for_ten_seconds_while_articles_are_posted(demo_copy: Path, tmp_path: Path) -> None:
    _run(demo_copy, tmp_path, seconds=10, batch=4)


@pytest.mark.soak
def test_sixteen_clients_for_a_minute_while_articles_are_posted(demo_copy: Path, tmp_path: Path) -> None:
    _run(demo_copy, tmp_path, seconds=60, batch=8)
