"""Text cleaning: pure functions over one article's text."""

from __future__ import annotations

import re
import unicodedata

from backend.core.text import normalize_for_hash

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]")
_INLINE_SPACE = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")


def clean_text(text: str) -> str:
    """Normalise Unicode and whitespace and drop paragraphs repeated within the article.

    Scraped pages often repeat a paragraph or a photo caption; kept, the repeat would be
    embedded twice and crowd other articles out of the results.
    """
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text)
    paragraphs: list[str] = []
    seen: set[str] = set()
    for raw in text.split("\n"):
        para = _INLINE_SPACE.sub(" ", raw).strip()
        if not para:
            continue
        key = normalize_for_hash(para)
        if key in seen:
            continue
        seen.add(key)
        paragraphs.append(para)
    return "\n\n".join(paragraphs)


def clean_line(text: str) -> str:
    return _INLINE_SPACE.sub(" ", _CONTROL.sub("", text)).strip()
