"""Answers and sources are shown as text: nothing from the archive is rendered as HTML or Markdown.

Every string that came from the archive or the API goes through ``escape_markdown`` first; the only
Markdown left active is what this module adds itself (bold for highlighted words, links to an
article's http(s) address, ``#anchor`` links from a ``[n]`` marker to its source card).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<&$:=^])")
_AUTOLINK = re.compile(r"(?i)\b(https?|www)(?=\\[:.])")
_WORD = re.compile(r"\w+", re.UNICODE)
# What escape_markdown makes of a citation marker "[3]".
_ESCAPED_MARKER = re.compile(r"\\\[(\d{1,3})\\\]")
# Words too common to be worth highlighting in a snippet.
_STOPWORDS = frozenset(
    "a an and are as at be by did do does for from had has have he her his how i in is it its of on or she"
    " that the their them they this to was were what when where which who whom whose why will with you"
    " about after before said says say tell told into over than then there these those".split()
)


def escape_markdown(text: str) -> str:
    """Escape every character Markdown or HTML would act on, so images, links and tags stay inert text.

    ``:`` is escaped too: Streamlit reads ``:material/icon:`` and ``:red[...]`` directives in Markdown.
    A bare ``http://`` or ``www.`` address gets an invisible word joiner after its scheme, because
    GitHub-flavoured Markdown links those even when escaped: archive text must not become a link.
    """
    return _AUTOLINK.sub("\\1\u2060", _MARKDOWN_SPECIAL.sub(r"\\\1", text))


def escape_paragraphs(text: str) -> str:
    """Escaped text whose line breaks survive Markdown (a lone newline would join two lines)."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "\n\n".join("  \n".join(escape_markdown(line) for line in p.splitlines()) for p in paragraphs)


def safe_url(url: str | None) -> str | None:
    """An http(s) address quoted for a Markdown link, or None: ``javascript:`` and friends never link."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    # Quoting spaces, brackets and angle brackets keeps the address from closing the Markdown link early.
    return quote(url, safe=":/?#@!$&'*+,;=%~-._")


def count(n: int, noun: str) -> str:
    """``1 passage``, ``3 passages``, ``1,234 articles``."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def day(value: str | None) -> str:
    return value[:10] if value else "undated"


def query_terms(*texts: str) -> frozenset[str]:
    """The words of a question worth highlighting: lower-cased, no stop words, no one-letter words."""
    return frozenset(
        w for text in texts for w in (m.lower() for m in _WORD.findall(text)) if len(w) > 1 and w not in _STOPWORDS
    )


def highlight(text: str, terms: Iterable[str]) -> str:
    """Escaped text with the given words in bold; the bold markers are the only Markdown in the result."""
    wanted = {t.lower() for t in terms}
    out: list[str] = []
    last = 0
    for match in _WORD.finditer(text):
        if match.group().lower() in wanted:
            out.append(escape_markdown(text[last : match.start()]))
            out.append(f"**{escape_markdown(match.group())}**")
            last = match.end()
    out.append(escape_markdown(text[last:]))
    return "".join(out)


def link_markers(escaped: str, anchors: Mapping[int, str]) -> str:
    """Turn each escaped ``[n]`` with a known card into a link to that card's ``#anchor``."""

    def link(match: re.Match[str]) -> str:
        anchor = anchors.get(int(match.group(1)))
        return f"[\\[{match.group(1)}\\]](#{anchor})" if anchor else match.group()

    return _ESCAPED_MARKER.sub(link, escaped)


def card_anchor(message: int, n: int) -> str:
    """The id of source card n under the answer at position ``message`` of the chat; unique on the page."""
    return f"source-{message}-{n}"


def title_link(item: Mapping[str, Any]) -> str:
    """The title as escaped Markdown, linked only when the address is http(s)."""
    title = escape_markdown(item.get("title") or item.get("article_id") or item.get("id") or "untitled")
    url = safe_url(item.get("url"))
    return f"[{title}]({url})" if url else title


def card_heading(citation: Mapping[str, Any]) -> str:
    """``[n] Title`` at body size (``:small[...]``): a subheader is needed for its anchor, not its size."""
    return f":small[\\[{citation.get('n')}\\] {title_link(citation)}]"


def source_line(citation: Mapping[str, Any]) -> str:
    """``[n] Title — Outlet, 2023-10-04`` as escaped Markdown, the title linked when the URL is http(s)."""
    outlet = escape_markdown(citation.get("source") or "unknown outlet")
    when = escape_markdown(day(citation.get("published_at")))
    return f"**\\[{citation['n']}\\]** {title_link(citation)} — {outlet}, {when}"


def also_in_line(item: Mapping[str, Any]) -> str | None:
    outlets = [o for o in item.get("also_in") or [] if o]
    return "Also in: " + ", ".join(escape_markdown(o) for o in outlets) if outlets else None


def percent(fraction: float) -> str:
    """``0.8`` as ``80%``."""
    return f"{min(max(fraction, 0.0), 1.0):.0%}"


def short_answer_heading(short: Mapping[str, Any], anchors: Mapping[int, str]) -> str:
    """``Nordstrom [2]`` as escaped Markdown, the marker linked to its card.

    The marker is added after escaping the words: a ``[3]`` inside the words is archive text, not a link.
    """
    marker = link_markers(escape_markdown(f"[{short.get('n')}]"), anchors) if short.get("n") is not None else ""
    return f"{escape_markdown(str(short.get('text') or ''))} {marker}".strip()


def short_answer_outlets(short: Mapping[str, Any]) -> list[str]:
    return list(dict.fromkeys(o for o in short.get("outlets") or [] if o))


def _facts(short: Mapping[str, Any]) -> list[str]:
    parts = [f"{percent(float(short.get('confidence') or 0.0))} confidence"]
    agreeing = len(short_answer_outlets(short))
    if agreeing:
        parts.append(f"{count(agreeing, 'outlet')} {'agrees' if agreeing == 1 else 'agree'}")
    return parts


def short_answer_facts(short: Mapping[str, Any]) -> str:
    """``80% confidence · 2 outlets agree`` (``1 outlet agrees``; nothing about outlets when none are named)."""
    return escape_markdown(" · ".join(_facts(short)))


def not_sure_note(short: Mapping[str, Any], anchors: Mapping[int, str]) -> str:
    """Below the server's threshold the short answer is a guess: said so, in a note, never as the answer."""
    guess = short_answer_heading(short, anchors)
    facts = escape_markdown(f", at {', '.join(_facts(short))}. Check the sources before relying on it.")
    return f"**Not sure.** {escape_markdown('The best guess from the archive is')} {guess}{facts}"


def reading_line(reply: Mapping[str, Any]) -> str:
    """How the question was read: the rewritten query, the date window and outlets, the as-of day."""
    parts = [f"Searched for: *{escape_markdown(reply.get('rewritten_query') or '')}*"]
    reading = reply.get("reading") or {}
    window = reading.get("window")
    if window:
        span = f"{day(window.get('start')) if window.get('start') else '…'} to "
        span += day(window.get("end")) if window.get("end") else "…"
        phrase = window.get("phrase")
        said = f" (from “{escape_markdown(phrase)}”)" if phrase else ""
        parts.append(f"dates {escape_markdown(span)}{said}")
    outlets = reading.get("sources") or []
    if outlets:
        parts.append("outlets " + ", ".join(escape_markdown(o) for o in outlets))
    if reply.get("as_of"):
        parts.append(f"as of {escape_markdown(day(reply['as_of']))}")
    return " · ".join(parts)


def archive_line(archive: Mapping[str, Any]) -> str:
    """``22 articles (24 passages) from 5 outlets, 2023-01-10 to 2024-03-02``, escaped."""
    articles = count(int(archive.get("articles") or 0), "article")
    passages = count(int(archive.get("chunks") or 0), "passage")
    line = f"{articles} ({passages}) from {count(len(archive.get('outlets') or []), 'outlet')}"
    first, last = archive.get("first_published"), archive.get("last_published")
    if first and last:
        line += f", {day(first)} to {day(last)}"
    return escape_markdown(line)
