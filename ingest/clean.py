"""Text cleaning: pure functions over one article's text."""

from __future__ import annotations

import re
import unicodedata

from backend.core.text import normalize_for_hash

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff\ufffd]")
_INLINE_SPACE = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")

# Page furniture that scrapers keep: whole short paragraphs only, so a sentence of the story
# that happens to start with "Related" stays.
_BOILERPLATE = re.compile(
    r"""^(?:
        (?:read|see)\s+(?:more|also|next)(?:\s*[:»›>…].*|\s+(?:about|on|at|from|stories|here)\b.*)?
      | (?:related|recommended|more\s+from|most\s+read|trending)(?:\s+(?:stories|articles|coverage|news|content))?
        (?:\s*:.*)?
      | more\s+from\s+\S.{0,40}
      | advertisement | advertising | sponsored(?:\s+content)?
      | share\s+(?:this|on|via|the)\b.*
      | (?:follow|like)\s+us\s+on\b.*
      | (?:sign\s+up|subscribe)\b.*(?:newsletter|updates|free|today|inbox|now).*
      | (?:click|tap)\s+here\b.*
      | skip\s+to\s+(?:main\s+)?content
      | (?:copyright|©|\(c\)).* | .*all\s+rights\s+reserved\.?
      | (?:share|tweet|email|print|facebook|twitter|x|whatsapp|linkedin|copy\s+link|comments?)
        (?:\s*[|•·/,]?\s*(?:share|tweet|email|print|facebook|twitter|x|whatsapp|linkedin|copy\s+link|comments?))*
    )$""",
    re.I | re.X,
)
_BOILERPLATE_MAX_WORDS = 20
_NAV_SEPARATORS = re.compile(r"\s*[|•»›·]\s*")


_MARKUP_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
# Text no reader sees but a model would: scripts and styles, elements styled invisible, and the role
# markup of chat templates ("<|im_start|>system", "[INST]", a "<system>" block, a "### System:" header),
# which no news story contains but an injection does to pose as the model's own instructions.
_HIDDEN = re.compile(
    r"""
      <(script|style|template)\b[^>]*>.*?(?:</\1\s*>|\Z)
    | <(\w+)\b[^>]*\bstyle\s*=\s*["'][^"']*
        (?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?![.\d]*[1-9])
          |opacity\s*:\s*0(?![.\d]*[1-9])|color\s*:\s*(?:white|\#fff(?:fff)?\b|transparent))
        [^>]*>.*?(?:</\2\s*>|\Z)
    | <\|im_start\|>.*?(?:<\|im_end\|>|\Z) | <\|[a-z_]+\|>
    | \[INST\].*?(?:\[/INST\]|\Z) | <<SYS>>.*?(?:<</SYS>>|\Z)
    | <\s*(system|assistant|developer)\b[^>]*>.*?(?:<\s*/\s*\3\s*>|\Z)
    | </?\s*source\b[^>]*>
    | \#{2,}[ \t]*(?:system|instructions?|assistant)[ \t]*:.*?(?=\#{2,}|\n\s*\n|\Z)
    """,
    re.IGNORECASE | re.DOTALL | re.VERBOSE,
)


def is_boilerplate(paragraph: str) -> bool:
    if len(paragraph.split()) <= _BOILERPLATE_MAX_WORDS and _BOILERPLATE.match(paragraph):
        return True
    # A navigation bar: three or more short items joined by separators ("Home | World | Sport").
    items = [i for i in _NAV_SEPARATORS.split(paragraph) if i]
    return len(items) >= 3 and all(len(i.split()) <= 3 for i in items) and len(items) > paragraph.count(".")


def clean_text(text: str) -> str:
    """Normalise Unicode and whitespace, drop page furniture and paragraphs repeated within the article.

    Scraped pages often repeat a paragraph or a photo caption; kept, the repeat would be
    embedded twice and crowd other articles out of the results.
    """
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text)
    # Markup comments are never article text, and a favourite hiding place for instructions to a model.
    text = _MARKUP_COMMENT.sub(" ", text)
    text = _HIDDEN.sub(" ", text)
    paragraphs: list[str] = []
    seen: set[str] = set()
    for raw in text.split("\n"):
        para = _INLINE_SPACE.sub(" ", raw).strip()
        if not para or is_boilerplate(para):
            continue
        key = normalize_for_hash(para)
        if key in seen:
            continue
        seen.add(key)
        paragraphs.append(para)
    return "\n\n".join(paragraphs)


def clean_line(text: str) -> str:
    return _INLINE_SPACE.sub(" ", _CONTROL.sub("", text)).strip()
