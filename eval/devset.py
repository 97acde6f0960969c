"""The dev set: a fixed, seeded slice of ../shared/data/rtqa2023 ingested into its own data directory.

All 7,587 articles take about an hour to embed on 2 cores, so ``make eval`` uses a slice: for each
dev question up to ``--per-question`` of the articles that contain its answer, plus a seeded sample of
other articles as distractors, plus every article that ``dev_relevant.jsonl`` labels as being about a
question (its topical labels, written into the questions' ``relevant`` field). The labelled articles
are added after the seeded draws, so a slice built before the labels existed is a subset of today's
and re-running only embeds the additions. The slice, its description and the question set are cached
in the data directory; a second run finds every article unchanged and embeds nothing. Nothing of the
corpus is copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import lzma
import random
import sys
from pathlib import Path
from typing import Any

from backend.embedding import build_embedder
from backend.services import build_registry, build_store
from backend.settings import Settings
from ingest.pipeline import Ingestor, IngestReport

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "rtqa2023"


def load_labels(source: Path) -> dict[str, list[str]]:
    """Topical labels: question id -> the URLs of the archive articles about it (empty when unlabelled).

    Absent file: no labels (an older copy of the data); every question is then judged by its answers.
    """
    path = source / "dev_relevant.jsonl"
    if not path.exists():
        return {}
    labels: dict[str, list[str]] = {}
    for number, line in enumerate(path.open(encoding="utf-8"), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        urls = record.get("relevant_urls")
        if not isinstance(record.get("id"), str) or not isinstance(urls, list):
            raise ValueError(f"{path}:{number}: expected {{'id': str, 'relevant_urls': [str]}}")
        labels[record["id"]] = [u for u in urls if isinstance(u, str) and u]
    return labels


def build_slice(source: Path, out: Path, per_question: int, distractors: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    questions = [json.loads(line) for line in (source / "dev_questions.jsonl").open(encoding="utf-8") if line.strip()]
    labels = load_labels(source)
    wanted: set[str] = set()
    for q in questions:
        urls = sorted(q["answer_urls"])
        wanted.update(rng.sample(urls, min(per_question, len(urls))))
    with lzma.open(source / "articles.jsonl.xz", "rt", encoding="utf-8") as fh:
        articles = [json.loads(line) for line in fh]
    chosen = [a for a in articles if a["url"] in wanted]
    others = [a for a in articles if a["url"] not in wanted]
    chosen += rng.sample(others, min(distractors, len(others)))
    # After the seeded draws, so that they stay what they were before the labels existed.
    labelled = {url for urls in labels.values() for url in urls}
    present = {a["url"] for a in chosen}
    added = [a for a in articles if a["url"] in labelled and a["url"] not in present]
    chosen += added
    chosen.sort(key=lambda a: a["id"])
    out.mkdir(parents=True, exist_ok=True)
    with (out / "slice.jsonl").open("w", encoding="utf-8") as fh:
        for article in chosen:
            fh.write(json.dumps(article) + "\n")
    with (out / "questions.jsonl").open("w", encoding="utf-8") as fh:
        for q in questions:
            record = {"id": q["id"], "question": q["question"], "as_of": q["as_of"], "answers": q["answers"],
                      "choices": q["choices"], "relevant": labels.get(q["id"]) or None, "history": None}  # fmt: skip
            fh.write(json.dumps(record) + "\n")
    description = {
        "source": "rtqa2023 (../shared/data/rtqa2023)",
        "seed": seed,
        "answer_articles_per_question": per_question,
        "answer_articles": len(chosen) - min(distractors, len(others)) - len(added),
        "distractors": min(distractors, len(others)),
        "labelled_questions": sum(1 for urls in labels.values() if urls),
        "labelled_articles": len(labelled),
        "labelled_articles_added": len(added),
        "articles": len(chosen),
        "questions": len(questions),
    }
    (out / "eval_slice.json").write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    return description


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path("data/eval/rtqa2023"))
    parser.add_argument("--per-question", type=int, default=3)
    parser.add_argument("--distractors", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=2023)
    args = parser.parse_args()
    if not (SHARED / "dev_questions.jsonl").exists():
        sys.exit(f"eval skipped: {SHARED} is absent (the research data lives in ../shared)")
    description_path = args.data_dir / "eval_slice.json"
    wanted = {
        "seed": args.seed,
        "answer_articles_per_question": args.per_question,
        "labelled_articles": len({u for urls in load_labels(SHARED).values() for u in urls}),
    }
    cached = json.loads(description_path.read_text()) if description_path.exists() else {}
    if (
        cached
        and all(cached.get(k) == v for k, v in wanted.items())
        and cached.get("distractors", -1) <= args.distractors
    ):
        print(f"slice cached in {args.data_dir}: {cached['articles']} articles", file=sys.stderr)
    else:
        cached = build_slice(SHARED, args.data_dir, args.per_question, args.distractors, args.seed)
        print(f"slice built in {args.data_dir}: {json.dumps(cached)}", file=sys.stderr)

    settings = Settings(data_dir=args.data_dir)
    ingestor = Ingestor(settings, build_embedder(settings.embedding), build_store(settings), build_registry(settings))

    def progress(report: IngestReport) -> None:
        print(f"\r{report.progress_line()}", end="", file=sys.stderr, flush=True)

    report = ingestor.ingest([args.data_dir / "slice.jsonl"], progress=progress)
    print(file=sys.stderr)
    print(report.summary().split("\nwarning")[0], file=sys.stderr)


if __name__ == "__main__":
    main()
