"""Loaders turn files into raw records; each problem becomes a ``LoadError`` and the run goes on.

A loader is chosen by extension, or by sniffing the first bytes when the extension says
nothing (``.xml``, no extension). Every loader yields ``Loaded`` items: a record or an error
message, where it was found, and how many bytes of the file are done (for progress).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.loaders.csv import load_csv
from ingest.loaders.feed import load_feed
from ingest.loaders.html import load_html
from ingest.loaders.json import load_json, load_jsonl, load_jsonl_stream
from ingest.loaders.text import load_text
from ingest.loaders.types import Loaded

Loader = Callable[[Path], Iterator[Loaded]]

BY_EXTENSION: dict[str, Loader] = {
    ".jsonl": load_jsonl,
    ".ndjson": load_jsonl,
    ".json": load_json,
    ".csv": load_csv,
    ".tsv": load_csv,
    ".txt": load_text,
    ".text": load_text,
    ".md": load_text,
    ".markdown": load_text,
    ".html": load_html,
    ".htm": load_html,
    ".rss": load_feed,
    ".atom": load_feed,
}
SNIFFED = {".xml", ""}
STDIN = Path("-")


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


def sniff(path: Path) -> Loader | None:
    """Choose a loader from the first bytes: feeds, HTML pages and JSON announce themselves."""
    with path.open("rb") as fh:
        head = fh.read(2048).lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"{", b"[")):
        return load_json if head.startswith(b"[") else load_jsonl
    if b"<rss" in head or b"<feed" in head or b"<rdf:rdf" in head:
        return load_feed
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return load_html
    return None


def loader_for(path: Path) -> Loader | None:
    suffix = path.suffix.lower()
    if suffix in BY_EXTENSION:
        return BY_EXTENSION[suffix]
    if suffix in SNIFFED:
        return sniff(path)
    return None


def iter_files(paths: Iterable[Path]) -> Iterator[Path | LoadError]:
    """Files to load, folders walked recursively in a stable order; unusable paths as errors.

    Inside folders, hidden files and files of other types are passed over silently (a folder
    of articles often holds images too); a file named explicitly must be loadable.
    """
    for path in paths:
        if path == STDIN:
            yield path
        elif path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                hidden = any(part.startswith(".") for part in child.relative_to(path).parts)
                if hidden or (child.suffix.lower() not in BY_EXTENSION and child.suffix.lower() != ".xml"):
                    continue
                yield child
        elif not path.exists():
            yield LoadError(path, None, "no such file or folder")
        elif path.suffix.lower() not in BY_EXTENSION and path.suffix.lower() not in SNIFFED:
            yield LoadError(path, None, f"unsupported file type {path.suffix!r}")
        else:
            yield path


_PROBE_BYTES = 8192
_MAX_BAD_SHARE = 0.3  # random bytes run near 0.6; text with a stray NUL or a few bad bytes near 0


def looks_binary(head: bytes) -> bool:
    """Every format we read is text: a file whose first bytes are mostly control characters or invalid
    UTF-8 is an image, an archive or noise, and would otherwise become a "story" of garbage."""
    if not head:
        return False
    decoded = head.decode("utf-8", errors="replace")
    if len(head) == _PROBE_BYTES:  # a multi-byte character cut by the probe is not a bad byte
        decoded = decoded[:-3]
    bad = sum(1 for ch in decoded if ch == "\ufffd" or (ch < " " and ch not in "\t\n\r\f"))
    return bad > _MAX_BAD_SHARE * max(1, len(decoded))


def load_file(path: Path) -> Iterator[tuple[RawRecord | LoadError, int]]:
    """Records of one file with the bytes done so far; ``-`` reads JSON Lines from stdin.

    A file that gives neither a record nor an error (empty, blank lines only, a header without rows)
    is reported too: whoever named it expected articles from it."""
    try:
        if path == STDIN:
            items: Iterator[Loaded] = load_jsonl_stream(sys.stdin.buffer)
        else:
            loader = loader_for(path)
            if loader is None:
                yield LoadError(path, None, "not a recognised article format (JSON, CSV, text, HTML or feed)"), 0
                return
            with path.open("rb") as fh:
                if looks_binary(fh.read(_PROBE_BYTES)):
                    yield LoadError(path, None, "binary data, not text: not an article format"), 0
                    return
            items = loader(path)
        found = 0
        for item in items:
            found += 1
            if isinstance(item.value, str):
                yield LoadError(path, item.line, item.value), item.offset
            else:
                yield RawRecord(item.value, path, item.line), item.offset
        if not found:
            yield LoadError(path, None, "no articles in the file (it is empty)"), 0
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        yield LoadError(path, None, f"cannot read file: {exc}"), 0
    except RecursionError:  # a parser (HTML, XML, YAML front matter) meeting hostile nesting
        yield LoadError(path, None, "cannot read file: nested too deeply"), 0
