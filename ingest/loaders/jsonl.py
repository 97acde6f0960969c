"""JSON Lines: one article object a line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def load_jsonl(path: Path) -> Iterator[tuple[int | None, dict[str, Any] | str]]:
    """Yield ``(line, record)``, or ``(line, message)`` for a line that is no JSON object."""
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, f"invalid JSON ({exc.msg} at column {exc.colno})"
                continue
            if not isinstance(record, dict):
                yield number, f"expected a JSON object, got {type(record).__name__}"
                continue
            yield number, record
