"""Loaders turn files into raw records; each problem becomes a ``LoadError`` and the run goes on.

The formats are a registry, ``FORMATS``: one entry per kind of file with its suffixes, its loader and,
for a kind that announces itself in its first bytes, how to tell. A file is read by its suffix, or
by sniffing its first bytes when the suffix says nothing (``.xml``, no suffix). The CLI's help, the
API's ``GET /archive/formats`` and so the chat's upload picker all read this registry; a new format
is one ``register(Format(...))``. Every loader yields ``Loaded`` items: a record or an error message,
where it was found, and how many bytes of the file are done (for progress).
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
STDIN = Path("-")


@dataclass(frozen=True, slots=True)
class Format:
    name: str  # found by it; short and stable, as the API reports it
    label: str  # for people: help texts, the upload page
    suffixes: tuple[str, ...]  # lowercase, with the dot
    # None: the suffix says nothing; the first bytes choose among the formats that announce themselves.
    loader: Loader | None
    # Whether a file's first bytes (lowercased, leading white space and BOM stripped) are of this format.
    # Sniffing asks the formats in registration order.
    announced: Callable[[bytes], bool] | None = None


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    taken = {s for f in FORMATS.values() for s in f.suffixes}
    if fmt.name in FORMATS or taken & set(fmt.suffixes):
        raise ValueError(f"format {fmt.name!r} or one of its suffixes {fmt.suffixes} is already registered")
    FORMATS[fmt.name] = fmt
    return fmt


def suffixes() -> tuple[str, ...]:
    """Every suffix a file may end with to be read (a file named on its own may also have none)."""
    return tuple(s for f in FORMATS.values() for s in f.suffixes)


def describe() -> str:
    """The formats with their suffixes, for a help text."""
    return "; ".join(f"{f.label}: {', '.join(f.suffixes)}" for f in FORMATS.values())


def format_for(suffix: str) -> Format | None:
    return next((f for f in FORMATS.values() if suffix.lower() in f.suffixes), None)


def _is_feed(head: bytes) -> bool:
    return b"<rss" in head or b"<feed" in head or b"<rdf:rdf" in head


def _is_html(head: bytes) -> bool:
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


register(Format("jsonl", "JSON Lines", (".jsonl", ".ndjson"), load_jsonl, lambda head: head.startswith(b"{")))
register(Format("json", "JSON", (".json",), load_json, lambda head: head.startswith(b"[")))
register(Format("csv", "CSV/TSV", (".csv", ".tsv"), load_csv))
register(Format("text", "text or Markdown", (".txt", ".text", ".md", ".markdown"), load_text))
# Before HTML: a feed may quote a page's markup in its first bytes.
register(Format("feed", "RSS/Atom feeds", (".rss", ".atom"), load_feed, _is_feed))
register(Format("html", "HTML pages", (".html", ".htm"), load_html, _is_html))
register(Format("xml", "XML (a feed or a page, told by its first bytes)", (".xml",), None))


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
    return next((f.loader for f in FORMATS.values() if f.announced is not None and f.announced(head)), None)


def loader_for(path: Path) -> Loader | None:
    fmt = format_for(path.suffix)
    if fmt is not None and fmt.loader is not None:
        return fmt.loader
    if fmt is not None or not path.suffix:
        return sniff(path)
    return None


def unsupported(path: Path) -> str | None:
    """Why a file named on its own cannot be read, judged by its name alone; None when it may be."""
    if path.suffix and format_for(path.suffix) is None:
        return f"unsupported file type {path.suffix!r}"
    return None


def iter_files(paths: Iterable[Path]) -> Iterator[Path | LoadError]:
    """Files to load, folders walked recursively in a stable order; unusable paths as errors.

    Inside folders, hidden files and files of other types (no suffix included) are passed over silently
    (a folder of articles often holds images too); a file named explicitly must be loadable.
    """
    for path in paths:
        if path == STDIN:
            yield path
        elif path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                hidden = any(part.startswith(".") for part in child.relative_to(path).parts)
                if hidden or format_for(child.suffix) is None:
                    continue
                yield child
        elif not path.exists():
            yield LoadError(path, None, "no such file or folder")
        elif reason := unsupported(path):
            yield LoadError(path, None, reason)
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
