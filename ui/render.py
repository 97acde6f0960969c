"""Answers and sources are shown as text: nothing from the archive is rendered as HTML or Markdown."""

from __future__ import annotations

import re
from typing import Any

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<&$])")


def escape_markdown(text: str) -> str:
    """Escape every character Markdown or HTML would act on, so images and links stay inert text."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def source_line(citation: dict[str, Any]) -> str:
    """``[n] Title — Outlet, 2023-10-04`` as escaped Markdown, the title linked when the URL is http(s)."""
    title = escape_markdown(citation.get("title") or citation.get("article_id") or "untitled")
    url = citation.get("url") or ""
    if url.startswith(("http://", "https://")):
        title = f"[{title}](<{url.replace('>', '%3E')}>)"
    outlet = escape_markdown(citation.get("source") or "unknown outlet")
    when = (citation.get("published_at") or "undated")[:10]
    return f"**\\[{citation['n']}\\]** {title} — {outlet}, {escape_markdown(when)}"
