"""JSON Lines (one article a line, streamed) and JSON documents (an array of articles or one)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ingest.loaders.types import Loaded

# Python's JSON parser recurses once per level: a document nested thousands deep is an attack, not news.
TOO_DEEP = "invalid JSON (nested too deeply)"


def load_jsonl(path: Path) -> Iterator[Loaded]:
    with path.open("rb") as fh:
        yield from load_jsonl_stream(fh)


def load_jsonl_stream(stream: IO[bytes]) -> Iterator[Loaded]:
    offset = 0
    for number, raw in enumerate(stream, start=1):
        offset += len(raw)
        line = raw.decode("utf-8-sig" if number == 1 else "utf-8", errors="replace")  # a BOM starts some exports
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Loaded(f"invalid JSON ({exc.msg} at column {exc.colno})", number, offset)
            continue
        except RecursionError:  # a hostile line must fail alone, not end the run
            yield Loaded(TOO_DEEP, number, offset)
            continue
        if not isinstance(record, dict):
            yield Loaded(f"expected a JSON object, got {type(record).__name__}", number, offset)
            continue
        yield Loaded(record, number, offset)


def load_json(path: Path) -> Iterator[Loaded]:
    raw = path.read_bytes()
    try:
        document: Any = json.loads(raw.decode("utf-8-sig", errors="replace"))
    except json.JSONDecodeError as exc:
        yield Loaded(f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", None, len(raw))
        return
    except RecursionError:
        yield Loaded(TOO_DEEP, None, len(raw))
        return
    if isinstance(document, dict) and isinstance(document.get("articles"), list):
        document = document["articles"]
    items = document if isinstance(document, list) else [document]
    for index, item in enumerate(items, start=1):
        if isinstance(item, dict):
            yield Loaded(item, None, len(raw) * index // len(items))
        else:
            yield Loaded(f"item {index}: expected a JSON object, got {type(item).__name__}", None, len(raw))
