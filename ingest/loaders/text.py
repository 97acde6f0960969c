"""Plain text and Markdown: the first non-empty line is the title, the rest the text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any


def load_text(path: Path) -> Iterator[tuple[int | None, dict[str, Any] | str]]:
    raw = path.read_text(encoding="utf-8", errors="replace")
    lines = raw.strip().splitlines()
    if not lines:
        yield None, "empty file"
        return
    title = lines[0].lstrip("# ").strip()
    body = "\n".join(lines[1:]).strip()
    if not body:
        yield None, "no text after the title line"
        return
    yield None, {"title": title, "text": body, "file": str(path)}
