"""Plain text and Markdown: front matter (``---`` ... ``---``) or the first line gives the title."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ingest.loaders.types import Loaded

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.S)


def load_text(path: Path) -> Iterator[Loaded]:
    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
    meta: dict[str, Any] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            parsed = yaml.safe_load(match.group(1))
        except yaml.YAMLError as exc:
            yield Loaded(f"unreadable front matter: {exc}", None, len(raw))
            return
        if isinstance(parsed, dict):
            meta = {str(k): v for k, v in parsed.items()}
        text = text[match.end() :]
    lines = text.strip().splitlines()
    if not meta.get("title"):
        if not lines:
            yield Loaded("empty file", None, len(raw))
            return
        meta["title"] = lines[0].lstrip("# ").strip()
        lines = lines[1:]
    body = "\n".join(lines).strip()
    if not body:
        yield Loaded("no text after the title", None, len(raw))
        return
    yield Loaded({**meta, "text": body}, None, len(raw))
