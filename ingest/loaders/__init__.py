"""Loaders turn files into raw records; each problem becomes a ``LoadError`` and the run goes on."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.loaders.jsonl import load_jsonl
from ingest.loaders.text import load_text

LOADERS = {".jsonl": load_jsonl, ".ndjson": load_jsonl, ".txt": load_text, ".md": load_text}


@dataclass(frozen=True, slots=True)
class RawRecord:
    data: dict[str, Any]
    path: Path
    line: int | None = None


@dataclass(frozen=True, slots=True)
class LoadError:
    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{where}: {self.message}"


def iter_files(paths: Iterable[Path]) -> Iterator[Path | LoadError]:
    """Files to load, folders walked recursively in a stable order; unusable paths as errors."""
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.suffix.lower() in LOADERS and not any(part.startswith(".") for part in child.parts):
                    yield child
        elif not path.exists():
            yield LoadError(path, None, "no such file or folder")
        elif path.suffix.lower() not in LOADERS:
            yield LoadError(path, None, f"unsupported file type {path.suffix or '(none)'!r}")
        else:
            yield path


def load_file(path: Path) -> Iterator[RawRecord | LoadError]:
    loader = LOADERS[path.suffix.lower()]
    try:
        for line, item in loader(path):
            if isinstance(item, str):
                yield LoadError(path, line, item)
            else:
                yield RawRecord(item, path, line)
    except (OSError, UnicodeDecodeError) as exc:
        yield LoadError(path, None, f"cannot read file: {exc}")
