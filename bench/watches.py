"""What saved questions cost: seconds per watch per new article, and what checking does to ``/ask``.

On the shared corpus (../shared/data/rtqa2023): an archive of ``--archive`` articles, then ``--new`` new ones
(the dev-set articles that answer ``--watches`` seeded dev questions, the rest drawn at random), checked
against those questions saved as watches, with the term pre-filter and without it (same events expected).
Then ``/ask``'s latency (in process, the same questions) alone and while a check runs in its lower-priority
thread. Prints a table; writes reports/bench/watches.json.

    python -m bench.watches --watches 20 --new 50
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from backend.answering.watch import lower_priority
from backend.services import Services, build_checker, build_generator, build_services
from backend.settings import EmbeddingSettings, Settings
from backend.store.watches import WatchStore
from bench.common import CORPUS, corpus_articles, table, write_result

QUESTIONS = CORPUS.parent / "dev_questions.jsonl"
RELEVANT = CORPUS.parent / "dev_relevant.jsonl"


Picked = tuple[list[str], list[dict[str, Any]], list[dict[str, Any]]]


def _pick(watches: int, new: int, archive: int, seed: int) -> Picked:
    """Questions, new articles (those that answer them first) and an archive of other articles."""
    articles = [a for a in corpus_articles(10**7) if a.get("text")]
    by_url = {a["url"]: a for a in articles if a.get("url")}
    relevant = {r["id"]: r["relevant_urls"] for r in map(json.loads, RELEVANT.open(encoding="utf-8"))}
    questions = [q for q in map(json.loads, QUESTIONS.open(encoding="utf-8")) if relevant.get(q["id"])]
    rng = random.Random(seed)
    rng.shuffle(questions)
    chosen: list[str] = []
    fresh: dict[str, dict[str, Any]] = {}
    for q in questions:
        answering = [by_url[u] for u in relevant[q["id"]] if u in by_url][:2]
        if not answering or len(fresh) + len(answering) > new:
            continue
        chosen.append(q["question"])
        fresh.update({a["id"]: a for a in answering})
        if len(chosen) == watches:
            break
    rest = [a for a in articles if a["id"] not in fresh]
    rng.shuffle(rest)
    filler = rest[: new - len(fresh)]
    fresh.update({a["id"]: a for a in filler})
    return chosen, list(fresh.values()), rest[new : new + archive]


def _ingest(services: Services, folder: Path, name: str, articles: list[dict[str, Any]]) -> tuple[list[str], float]:
    from ingest.pipeline import Ingestor

    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(a) + "\n" for a in articles), encoding="utf-8")
    started = time.perf_counter()
    report = Ingestor(services.settings, services.embedder, services.store, services.registry, services.lexical).ingest(
        [path]
    )
    return report.stored(), time.perf_counter() - started


def _single(services: Services, folder: Path, questions: list[str], new: list[str], prefilter: bool) -> dict[str, Any]:
    """The same watches against one article at a time (a poller's batch may be one article)."""
    store = WatchStore(folder / f"single-{prefilter}.sqlite3")
    for q in questions:
        store.create("bench", q)
    checker = build_checker(replace(services, watches=store), prefilter=prefilter)
    seconds, read, events = 0.0, 0, 0
    for article in new:
        report = checker.check([article])
        seconds, read, events = seconds + report.seconds, read + report.read, events + len(report.events)
    return {
        "prefilter": prefilter,
        "articles": len(new),
        "seconds": round(seconds, 3),
        "ms_per_watch_per_article": round(1000 * seconds / (len(questions) * len(new)), 1),
        "answers_read": read,
        "events": events,
    }


def _check(services: Services, folder: Path, questions: list[str], new: list[str], prefilter: bool) -> dict[str, Any]:
    store = WatchStore(folder / f"watches-{prefilter}.sqlite3")
    for q in questions:
        store.create("bench", q)
    checker = build_checker(replace(services, watches=store), prefilter=prefilter)
    checker.check(new[:1], store.every()[:1])  # the model and spaCy loaded, outside the measurement
    for w in store.every():
        store.delete(w.id, "bench")
    for q in questions:
        store.create("bench", q)
    fetch_started = time.perf_counter()
    services.store.chunks_with_vectors(new)
    fetch_s = time.perf_counter() - fetch_started
    report = checker.check(new)
    pairs = sorted((store.get(e.watch_id, "bench").question, e.article.id) for e in report.events)
    return {
        "prefilter": prefilter,
        "seconds": round(report.seconds, 3),
        "ms_per_watch_per_article": round(1000 * report.seconds / (len(questions) * len(new)), 3),
        "ms_per_watch_per_batch": round(1000 * report.seconds / len(questions), 1),
        "answers_read": report.read,
        "watches_skipped": report.skipped,
        "events": len(report.events),
        "fetch_vectors_s": round(fetch_s, 3),
        "pairs": pairs,
    }


def _ask_latency(services: Services, questions: list[str], during: threading.Thread | None) -> list[float]:
    if during is not None:
        during.start()
    times = []
    for q in questions:
        started = time.perf_counter()
        services.answers.ask(q)
        times.append(1000 * (time.perf_counter() - started))
    if during is not None:
        during.join()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--watches", type=int, default=20)
    parser.add_argument("--new", type=int, default=50)
    parser.add_argument("--archive", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--single", type=int, default=10, help="New articles also checked one at a time.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of /ask alone, then beside a check.")
    args = parser.parse_args()
    questions, new_articles, archive = _pick(args.watches, args.new, args.archive, args.seed)
    with tempfile.TemporaryDirectory(prefix="byline-bench-watches-") as tmp:
        folder = Path(tmp)
        # No question cache: /ask is timed twice over the same questions, and the second pass must not be free.
        services = build_services(Settings(data_dir=folder / "data", embedding=EmbeddingSettings(cache_size=0)))
        try:
            _ingest(services, folder, "archive", archive)
            new, ingest_s = _ingest(services, folder, "new", new_articles)
            chunks = len(services.store.chunks_with_vectors(new))
            runs = [_check(services, folder, questions, new, prefilter) for prefilter in (True, False)]
            singles = [_single(services, folder, questions, new[: args.single], p) for p in (True, False)]
            services.answers.ask(questions[0])  # warm
            store = WatchStore(folder / "watches-during.sqlite3")
            for q in questions:
                store.create("bench", q)
            in_flight = services.pools.in_flight
            overlaps: list[int] = []  # questions under way at each reading the check did
            gated = build_checker(replace(services, watches=store), prefilter=False)
            counted = build_generator(
                services.settings, services.embedder, None, services.store.article_text, pool=services.pools.llm
            )

            class Counting:
                def generate(self, *args: Any, **kwargs: Any) -> Any:
                    overlaps.append(in_flight.count)
                    return counted.generate(*args, **kwargs)

            gated._generator = Counting()  # the bench counts the readings that ran beside a question
            alone: list[float] = []
            during: list[float] = []
            checks_s: list[float] = []
            for _ in range(args.rounds):  # interleaved, so that other load on the machine falls on both alike
                alone += _ask_latency(services, questions, None)

                def check() -> None:
                    lower_priority()
                    started = time.perf_counter()
                    gated.check(new)
                    checks_s.append(time.perf_counter() - started)

                during += _ask_latency(services, questions, threading.Thread(target=check, name="byline-watches"))
        finally:
            services.close()
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "watches": len(questions),
        "new_articles": len(new),
        "archive_articles": len(archive),
        "new_chunks": chunks,
        "ingest_new_s": round(ingest_s, 2),
        "runs": runs,
        "single_article_batches": singles,
        "same_events_with_prefilter": runs[0]["pairs"] == runs[1]["pairs"],
        "ask_ms_alone": {"p50": round(statistics.median(alone), 1), "max": round(max(alone), 1)},
        "ask_ms_during_check": {"p50": round(statistics.median(during), 1), "max": round(max(during), 1)},
        "check_beside_asks_s": [round(c, 1) for c in checks_s],
        "readings_beside_a_question": sum(1 for n in overlaps if n),
        "readings": len(overlaps),
    }
    rows: list[tuple[str, ...]] = [("batch", "pre-filter", "check s", "ms / watch / article", "answers read", "events")]
    for r in runs:
        rows.append(
            (
                f"{len(new)} articles",
                "on" if r["prefilter"] else "off",
                f"{r['seconds']:.2f}",
                f"{r['ms_per_watch_per_article']:.1f}",
                f"{r['answers_read']} of {len(questions)}",
                str(r["events"]),
            )
        )
    for r in singles:
        rows.append(
            (
                f"1 article, x{r['articles']}",
                "on" if r["prefilter"] else "off",
                f"{r['seconds']:.2f}",
                f"{r['ms_per_watch_per_article']:.1f}",
                f"{r['answers_read']} of {len(questions) * r['articles']}",
                str(r["events"]),
            )
        )
    print(f"{len(questions)} watches x {len(new)} new articles ({chunks} chunks; archive {len(archive)})")
    print(table(rows))
    print(f"same events with and without the pre-filter: {result['same_events_with_prefilter']}")
    alone_p50, during_p50 = result["ask_ms_alone"]["p50"], result["ask_ms_during_check"]["p50"]
    print(f"/ask p50 alone {alone_p50} ms, during a check {during_p50} ms ({args.rounds} rounds, interleaved)")
    beside, readings = result["readings_beside_a_question"], result["readings"]
    print(f"readings of the check done while a question was under way: {beside} of {readings}")
    print(f"written to {write_result('watches', result)}")


if __name__ == "__main__":
    main()
