"""Feeds, news sitemaps and article pages read into entries and article records: Byline's one parser of each.

RSS and Atom go through feedparser, whose leniency is the point: a feed that is not well-formed XML
but still has items is read (only a "bozo" feed with no entries is an error). Sitemaps go through lxml
with entities left unresolved, no network, no DTD and no huge trees, so neither a billion laughs nor
an external entity expands; feedparser is safe the same way (it keeps only plain internal entities and
reads the bytes, never a path or URL, as we hand it a stream). Pages go through trafilatura.

The loaders of ``ingest.loaders`` (feed and HTML files) use these functions too.
"""

from __future__ import annotations

import io
import logging
import re
import xml.sax
from dataclasses import dataclass
from html import unescape
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

from lxml import etree

from backend.core.net import canonical_url

# trafilatura reports every page it finds too short at WARNING; callers say it once.
logging.getLogger("trafilatura").setLevel(logging.ERROR)

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
# Tracking parameters dropped from URLs so that one article is one URL whichever link led to it.
# sy:updatePeriod in seconds (the RSS 1.0 syndication module); sy:updateFrequency divides it.
_PERIODS = {"hourly": 3600.0, "daily": 86_400.0, "weekly": 604_800.0, "monthly": 2_592_000.0, "yearly": 31_536_000.0}

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.I | re.S)
_BLOCK = re.compile(r"</?(?:p|div|li|ul|ol|h[1-6]|blockquote|tr|table|section|article|figure|pre)\b[^>]*>", re.I)
_BREAK = re.compile(r"<br\s*/?>", re.I)
_TAG = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANKS = re.compile(r"\n{3,}")


@dataclass(frozen=True, slots=True)
class Entry:
    url: str | None  # canonical_url of the entry's link
    guid: str | None
    title: str
    published: str | None  # the date string as given (the ingest pipeline parses dates)
    authors: tuple[str, ...]
    # The entry's content as plain text (paragraph breaks kept); the summary's text when the feed gave only
    # that (then summary_only is True); "" when it gave neither.
    text: str
    summary_only: bool  # True when the feed gave only a summary or nothing: the page must be fetched
    outlet: str | None  # a news sitemap's publication name; for feeds None (the poller uses the feed title)


@dataclass(frozen=True, slots=True)
class Parsed:
    kind: Literal["rss", "atom", "sitemap", "sitemap_index"]
    title: str | None
    ttl_s: float | None  # RSS <ttl> (minutes) or sy:updatePeriod/updateFrequency, in seconds
    entries: list[Entry]
    sitemaps: list[str]  # a sitemap index's child sitemaps (absolute URLs)


class ParseError(Exception):
    """Not a feed or sitemap Byline can read; the message says why."""


def html_to_text(fragment: str) -> str:
    """Feed content is an HTML fragment: paragraphs become blank-line breaks; tags, scripts and styles go."""
    text = _SCRIPT.sub(" ", _COMMENT.sub(" ", fragment))
    text = _BREAK.sub("\n", _BLOCK.sub("\n\n", text))
    text = unescape(_TAG.sub("", text))
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def parse_source(body: bytes, url: str) -> Parsed:
    """A feed (RSS, Atom), a news sitemap or a sitemap index; ``url`` resolves relative links.

    Raises ``ParseError`` for an empty body, an HTML page, and anything with no entries that is not a
    well-formed feed or sitemap."""
    if not body.strip():
        raise ParseError("the source is empty")
    root = _root_name(body)
    if root == "html" or body.lstrip()[:15].lower().startswith(b"<!doctype html"):
        raise ParseError("an HTML page, not a feed or sitemap (the page may link to its feed)")
    if root in ("urlset", "sitemapindex"):
        return _parse_sitemap(body, url)
    return _parse_feed(body, url, root)


def _safe_parser(recover: bool) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_pis=True,
        recover=recover,
    )


def _local(tag: object) -> str:
    return etree.QName(tag).localname.lower() if isinstance(tag, str) else ""


def _root_name(body: bytes) -> str | None:
    try:
        root = etree.fromstring(body, _safe_parser(recover=True))
    except (etree.XMLSyntaxError, ValueError):
        return None
    return _local(root.tag) if root is not None else None


def _parse_sitemap(body: bytes, url: str) -> Parsed:
    try:
        root = etree.fromstring(body, _safe_parser(recover=False))
    except etree.XMLSyntaxError as exc:
        root = etree.fromstring(body, _safe_parser(recover=True))  # read what can be read, as feedparser does
        problem: str | None = str(exc)
    else:
        problem = None
    if _local(root.tag) == "sitemapindex":
        children = [urljoin(url, loc) for loc in (_child_text(s, "loc") for s in _children(root, "sitemap")) if loc]
        if not children and problem:
            raise ParseError(f"a sitemap index that is not well-formed XML: {problem}")
        return Parsed("sitemap_index", None, None, [], children)
    entries = []
    for node in _children(root, "url"):
        loc = _child_text(node, "loc")
        if not loc:
            continue
        news = next(iter(_children(node, "news")), None)
        publication = next(iter(_children(news, "publication")), None) if news is not None else None
        entries.append(
            Entry(
                url=canonical_url(urljoin(url, loc)),
                guid=None,
                title=(_child_text(news, "title") if news is not None else None) or "",
                published=(_child_text(news, "publication_date") if news is not None else None)
                or _child_text(node, "lastmod"),
                authors=(),
                text="",
                summary_only=True,
                outlet=_child_text(publication, "name") if publication is not None else None,
            )
        )
    if not entries and problem:
        raise ParseError(f"a sitemap that is not well-formed XML: {problem}")
    return Parsed("sitemap", None, None, entries, [])


def _children(node: Any, name: str) -> list[Any]:
    return [child for child in node if _local(child.tag) == name]


def _child_text(node: Any, name: str) -> str | None:
    for child in _children(node, name):
        text = "".join(child.itertext()).strip()
        if text:
            return text
    return None


def _parse_feed(body: bytes, url: str, root: str | None) -> Parsed:
    import feedparser

    # A stream, never bytes or str: feedparser would open a string that names a file or URL.
    # application/xml: the XML declaration names the encoding (feedparser reads text/xml as ASCII).
    headers = {"content-type": "application/xml", "content-location": url}
    parsed = feedparser.parse(io.BytesIO(body), response_headers=headers)
    version = str(parsed.get("version") or "")
    if not parsed.entries:
        problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
        # Not well-formed, or not a feed at all; an encoding complaint about a well-formed empty feed is no error.
        if problem is not None and (not version or isinstance(problem, xml.sax.SAXException)):
            raise ParseError(f"not a feed Byline can read: {problem}")
        if not version:
            raise ParseError(f"not a feed or sitemap (the document is <{root or '?'}>)")
    kind: Literal["rss", "atom"] = "atom" if version.startswith("atom") or root == "feed" else "rss"
    feed = parsed.feed
    entries = [_entry(entry) for entry in parsed.entries]
    return Parsed(kind, (feed.get("title") or "").strip() or None, _ttl_s(feed), entries, [])


def _entry(entry: Any) -> Entry:
    contents = [_as_text(c.get("value", ""), c.get("type")) for c in entry.get("content", []) if c.get("value")]
    text = "\n\n".join(c for c in contents if c)
    summary_only = not text
    if summary_only:
        detail = entry.get("summary_detail") or {}
        text = _as_text(entry.get("summary") or "", detail.get("type"))
    names = [a.get("name", "").strip() for a in entry.get("authors", []) if a.get("name", "").strip()]
    if not names and entry.get("author"):
        names = [str(entry.get("author")).strip()]
    link = entry.get("link") or None
    if link and urlsplit(link).scheme.lower() not in ("http", "https", ""):
        link = None  # feedparser takes an Atom id (urn:...) as the link when there is none
    return Entry(
        url=canonical_url(link) if link else None,
        guid=entry.get("id") or None,
        title=html_to_text(entry.get("title") or ""),
        published=entry.get("published") or entry.get("updated") or None,
        authors=tuple(dict.fromkeys(names)),
        text=text,
        summary_only=summary_only,
        outlet=None,
    )


def _as_text(value: str, media_type: str | None) -> str:
    if media_type == "text/plain":  # Atom's type="text": a "<" is a character, not a tag
        return _BLANKS.sub("\n\n", "\n".join(_SPACES.sub(" ", line).strip() for line in value.split("\n"))).strip()
    return html_to_text(value)


def _ttl_s(feed: Any) -> float | None:
    try:
        ttl = float(feed.get("ttl") or 0)
    except ValueError:
        ttl = 0.0
    if ttl > 0:
        return ttl * 60.0
    period = _PERIODS.get(str(feed.get("sy_updateperiod") or "").strip().lower())
    if period is None:
        return None
    try:
        frequency = max(1.0, float(feed.get("sy_updatefrequency") or 1))
    except ValueError:
        frequency = 1.0
    return period / frequency


def page_record(body: bytes, url: str) -> dict[str, Any] | None:
    """An article page's record for the ingest pipeline (title, text, url, published_at, authors, source),
    each key only when found; None when the page has no article text. ``url`` ("" when unknown) stands in
    for a page that names no canonical URL."""
    import trafilatura

    document = trafilatura.bare_extraction(
        body, url=url or None, with_metadata=True, include_comments=False, favor_precision=True
    )
    data: dict[str, Any] = {}
    if document is not None:
        data = document.as_dict() if hasattr(document, "as_dict") else dict(document)
    text = (data.get("text") or "").strip()
    if not text:
        return None
    title = (data.get("title") or "").strip()
    first, _, rest = text.partition("\n")
    if title and first.strip() == title and rest.strip():
        text = rest.strip()  # the extractor repeats the headline as the first line
    page_url = data.get("url") or url
    record = {
        "title": title,
        "text": text,
        "url": canonical_url(page_url) if page_url else None,
        "published_at": data.get("date"),
        "authors": data.get("author"),
        "source": data.get("sitename"),
    }
    return {key: value for key, value in record.items() if value}
