"""What the benchmarks share: the research corpus in ../shared and a place for results."""

from __future__ import annotations

import json
import lzma
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "rtqa2023" / "articles.jsonl.xz"
RESULTS = ROOT / "reports" / "bench"


def corpus_articles(limit: int) -> Iterator[dict[str, Any]]:
    """The first ``limit`` articles of the shared corpus; exits with a message where it is absent."""
    if not CORPUS.exists():
        sys.exit(f"benchmark skipped: {CORPUS} is absent (the research data lives in ../shared)")
    with lzma.open(CORPUS, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if n >= limit:
                return
            yield json.loads(line)


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return path


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
