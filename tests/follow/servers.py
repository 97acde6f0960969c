"""Real HTTP servers on loopback that behave well or badly on purpose, and feeds and sitemaps to serve.

A ``Site`` is a ``ThreadingHTTPServer`` on 127.0.0.1 (or another loopback address) and a free port,
serving a route table the test sets and may change while it runs (a feed that gains items). It counts
the requests per path and keeps the headers each one sent. The ``site`` fixture gives one per test;
``with Site() as other:`` gives another (a redirect to another port, a second host).

    site.route("/feed.xml", rss([Item("Strike ends", "https://e.org/1")]), content_type=RSS, etag='"v1"')
    site.redirect("/old", "/feed.xml")
    site.fail("/busy", 503, retry_after="120")
    site.drip("/slow", b"<rss/>", every_s=0.5)
    site.endless("/forever")
    site.huge("/big", 50_000_000, content_length=False)
    site.hang("/silent")
    site.robots("User-agent: *\\nDisallow: /private")
    fetcher.get(site.url("/feed.xml"), ...); site.hits("/feed.xml"); site.seen("/feed.xml")[0].headers["user-agent"]

Every response closes its connection, so no handler thread lingers on a kept-alive socket; handlers
that wait (drip, endless, hang) stop when the site stops.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import pytest

RSS = "application/rss+xml; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"
XML = "application/xml; charset=utf-8"
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    content_type: str | None = TEXT
    etag: str | None = None
    last_modified: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_length: bool = True  # send an honest Content-Length (else the body ends when the connection does)
    drip_s: float | None = None  # the body one byte at a time, this many seconds apart
    drip_head: bool = False  # the status line and headers dripped too
    endless: bool = False
    size: int | None = None  # a body of this many zero bytes, made as it is sent
    hang: bool = False  # read the request, answer nothing


@dataclass(frozen=True)
class Seen:
    path: str  # with its query
    headers: dict[str, str]  # lower-case names


class Site:
    """A loopback HTTP server with a route table; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._routes: dict[str, Route] = {}
        self._seen: dict[str, list[Seen]] = {}
        self._sent: dict[str, int] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._active = 0
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- running

    def __enter__(self) -> Site:
        site = self

        class Handler(_Handler):
            owner = site

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        assert self._server is not None, "the site is not started (use it as a context manager)"
        return int(self._server.server_address[1])

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    # --- routes (each replaces what the path served before, also while the site runs)

    def route(
        self,
        path: str,
        body: bytes | str = b"",
        *,
        status: int = 200,
        content_type: str | None = TEXT,
        etag: str | None = None,
        last_modified: str | None = None,
        headers: dict[str, str] | None = None,
        content_length: bool = True,
    ) -> None:
        """A static answer; with ``etag`` or ``last_modified`` a matching conditional request gets 304."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        self._set(
            path,
            Route(status, data, content_type, etag, last_modified, dict(headers or {}), content_length=content_length),
        )

    def redirect(self, path: str, to: str, *, status: int = 302) -> None:
        """``to`` is sent as the Location as given: a path, a relative reference or a URL elsewhere."""
        self._set(path, Route(status, content_type=None, headers={"Location": to}))

    def fail(self, path: str, status: int = 500, *, retry_after: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self._set(path, Route(status, f"error {status}".encode(), headers=headers))

    def drip(
        self, path: str, body: bytes | str, *, every_s: float = 0.5, head_too: bool = False, content_type: str = XML
    ) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self._set(path, Route(body=data, content_type=content_type, drip_s=every_s, drip_head=head_too))

    def endless(self, path: str, *, content_type: str = XML) -> None:
        self._set(path, Route(content_type=content_type, content_length=False, endless=True))

    def huge(self, path: str, size: int, *, content_length: bool = True, content_type: str = XML) -> None:
        self._set(path, Route(content_type=content_type, content_length=content_length, size=size))

    def hang(self, path: str) -> None:
        self._set(path, Route(hang=True))

    def robots(self, text: str, *, status: int = 200) -> None:
        self.route("/robots.txt", text, status=status, content_type=TEXT)

    def remove(self, path: str) -> None:
        with self._lock:
            self._routes.pop(path, None)

    def _set(self, path: str, route: Route) -> None:
        with self._lock:
            self._routes[path] = route

    # --- what happened

    def hits(self, path: str) -> int:
        with self._lock:
            return len(self._seen.get(path, []))

    def seen(self, path: str) -> list[Seen]:
        with self._lock:
            return list(self._seen.get(path, []))

    def sent(self, path: str) -> int:
        """Body bytes the server managed to write for ``path``, all requests together."""
        with self._lock:
            return self._sent.get(path, 0)

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Until no request is being answered (a client that gave up has been noticed)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout=timeout_s)

    # --- answering

    def _answer(self, handler: _Handler) -> None:
        path = urlsplit(handler.path).path
        with self._lock:
            self._active += 1
            route = self._routes.get(path)
            headers = {name.lower(): value for name, value in handler.headers.items()}
            self._seen.setdefault(path, []).append(Seen(handler.path, headers))
        try:
            self._respond(handler, path, route, headers)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the client gave up, which is often the point
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _respond(self, handler: _Handler, path: str, route: Route | None, request: dict[str, str]) -> None:
        handler.close_connection = True
        if route is None:
            route = Route(404, b"not found")
        if route.hang:
            self._stop.wait()
            return
        status, body = route.status, route.body
        if status == 200 and _not_modified(route, request):
            status, body = 304, b""
        head = {"Connection": "close"}
        if route.content_type and status != 304:
            head["Content-Type"] = route.content_type
        if route.etag:
            head["ETag"] = route.etag
        if route.last_modified:
            head["Last-Modified"] = route.last_modified
        head.update(route.headers)
        length = route.size if route.size is not None else len(body)
        if route.content_length and not route.endless and status != 304:
            head["Content-Length"] = str(length)
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Whatever"
        raw = f"HTTP/1.1 {status} {phrase}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n"
        out = handler.wfile
        if route.drip_head and route.drip_s is not None:
            for byte in raw.encode("latin-1"):
                out.write(bytes([byte]))
                if self._stop.wait(route.drip_s):
                    return
        else:
            out.write(raw.encode("latin-1"))
        for chunk in self._body(route, body):
            out.write(chunk)
            with self._lock:
                self._sent[path] = self._sent.get(path, 0) + len(chunk)
            if route.drip_s is not None and self._stop.wait(route.drip_s):
                return
            if self._stop.is_set():
                return

    def _body(self, route: Route, body: bytes) -> Iterator[bytes]:
        if route.endless:
            while True:
                yield b"<item>" + b"x" * 16_000 + b"</item>"
        elif route.size is not None:
            left = route.size
            while left > 0:
                yield b"\0" * min(left, 65_536)
                left -= 65_536
        elif route.drip_s is not None:
            yield from (bytes([byte]) for byte in body)
        elif body:
            yield body


def _not_modified(route: Route, request: dict[str, str]) -> bool:
    if route.etag and "if-none-match" in request:
        tags = {tag.strip() for tag in request["if-none-match"].split(",")}
        return route.etag in tags or "*" in tags
    return bool(route.last_modified) and request.get("if-modified-since") == route.last_modified


class _Handler(BaseHTTPRequestHandler):
    owner: Site
    protocol_version = "HTTP/1.1"
    timeout = 10  # a client that stops reading cannot hold a handler thread for ever

    def do_GET(self) -> None:
        self.owner._answer(self)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[Site]:
    with Site() as running:
        yield running


def loopback_alias_works(host: str = "127.0.0.2") -> bool:
    """Whether another 127.x address can be bound here (Linux routes all of 127/8 to loopback)."""
    try:
        with socket.socket() as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


# --- feeds and sitemaps to serve


@dataclass(frozen=True)
class Item:
    title: str
    link: str | None = None
    guid: str | None = None
    date: datetime | str | None = None
    content: str | None = None  # the full HTML (RSS content:encoded, Atom content)
    summary: str | None = None  # RSS description, Atom summary
    author: str | None = None


def _text(value: str) -> str:
    return escape(value)


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _rfc822(date: datetime | str) -> str:
    return date if isinstance(date, str) else format_datetime(date)


def _iso(date: datetime | str) -> str:
    return date if isinstance(date, str) else date.isoformat()


def rss(
    items: Iterable[Item], *, title: str = "Harbor Post", link: str = "https://harbor.example/", ttl: int | None = None
) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>',
        f"<title>{_text(title)}</title><link>{_text(link)}</link><description>{_text(title)}</description>",
    ]
    if ttl is not None:
        parts.append(f"<ttl>{ttl}</ttl>")
    for item in items:
        parts.append(f"<item><title>{_text(item.title)}</title>")
        if item.link:
            parts.append(f"<link>{_text(item.link)}</link>")
        if item.guid:
            parts.append(f'<guid isPermaLink="false">{_text(item.guid)}</guid>')
        if item.date:
            parts.append(f"<pubDate>{_text(_rfc822(item.date))}</pubDate>")
        if item.author:
            parts.append(f"<dc:creator>{_text(item.author)}</dc:creator>")
        if item.summary:
            parts.append(f"<description>{_cdata(item.summary)}</description>")
        if item.content:
            parts.append(f"<content:encoded>{_cdata(item.content)}</content:encoded>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "\n".join(parts).encode("utf-8")


def atom(items: Iterable[Item], *, title: str = "Valley Courier", feed_id: str = "urn:test:feed") -> bytes:
    parts = [
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">',
        f"<title>{_text(title)}</title><id>{_text(feed_id)}</id><updated>2024-01-01T00:00:00Z</updated>",
    ]
    for item in items:
        parts.append(f"<entry><title>{_text(item.title)}</title>")
        parts.append(f"<id>{_text(item.guid or item.link or item.title)}</id>")
        if item.link:
            parts.append(f'<link rel="alternate" href="{_text(item.link)}"/>')
        if item.date:
            parts.append(f"<updated>{_text(_iso(item.date))}</updated><published>{_text(_iso(item.date))}</published>")
        if item.author:
            parts.append(f"<author><name>{_text(item.author)}</name></author>")
        if item.summary:
            parts.append(f'<summary type="html">{_text(item.summary)}</summary>')
        if item.content:
            parts.append(f'<content type="html">{_text(item.content)}</content>')
        parts.append("</entry>")
    parts.append("</feed>")
    return "\n".join(parts).encode("utf-8")


def news_sitemap(items: Iterable[Item], *, publication: str = "Harbor Post", language: str = "en") -> bytes:
    """A Google news sitemap: each item's link as ``loc``, its date and title in ``news:news``."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
        ' xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">',
    ]
    for item in items:
        parts.append(f"<url><loc>{_text(item.link or '')}</loc><news:news><news:publication>")
        parts.append(f"<news:name>{_text(publication)}</news:name><news:language>{language}</news:language>")
        parts.append("</news:publication>")
        if item.date:
            parts.append(f"<news:publication_date>{_text(_iso(item.date))}</news:publication_date>")
        parts.append(f"<news:title>{_text(item.title)}</news:title></news:news></url>")
    parts.append("</urlset>")
    return "\n".join(parts).encode("utf-8")


def sitemap_index(urls: Iterable[str]) -> bytes:
    body = "".join(f"<sitemap><loc>{_text(url)}</loc></sitemap>" for url in urls)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</sitemapindex>'
    ).encode()
