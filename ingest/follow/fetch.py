"""The one way Byline fetches a followed source or an article page: safe for the server, polite to the host.

Safe. A URL someone asked Byline to follow must not make it reach what only the server can reach, so
every hop (the first request, each redirect, each robots.txt) passes ``backend.core.net.check_url``
first, and the connection then goes to the address that check approved, never to a second DNS
answer: a host that resolves to a public address for the check and to 127.0.0.1 a moment later (DNS
rebinding) gets nothing. The pinning lives in a small httpcore network backend (``PinnedBackend``) rather
than in a URL rewritten to the IP: the URL keeps its host name, so the ``Host`` header, TLS's SNI and
the certificate check are all httpx's and httpcore's own, and a pooled connection is only ever reused
for the host it was opened for (a URL rewritten to an IP would let two names on one address share a
TLS connection verified for the other). The backend refuses to connect to any host it was not told
about for the current hop.

The same backend bounds the whole fetch in time. httpx's timeouts are per socket operation, so a
server dripping one byte every half second (in its headers or its body) would never trip them; the
backend clamps every connect, read and write to what is left of the fetch's deadline, so a fetch ends
by ``timeout_s`` however the server behaves. The limit is on network time: waiting for a host's turn
does not spend it, and a robots.txt read on the way is a fetch with a limit of its own.

Size is bounded by reading the body in chunks and stopping as soon as it passes the limit; a larger
``Content-Length`` is refused before any of the body is read. The body is counted decompressed, so a
gzip bomb is cut too (after at most one network chunk's expansion: deflate tops out near 1000 to 1).

Polite. One request per host per ``host_interval_s`` (robots.txt's ``Crawl-delay`` can lengthen it):
the fetcher sleeps, through the ``sleep`` it was given, until the host's turn. robots.txt is read once
an hour per origin through the same safe path; a missing one (4xx) allows everything, a broken one
(5xx, unreachable) means "try later" (RFC 9309). Every request says who we are in ``User-Agent``.

Everything that can go wrong on the network or in HTTP comes out as ``FetchError``, in words fit for a
health page, with the status and ``Retry-After`` when the server gave them.
"""

from __future__ import annotations

import email.utils
import importlib.metadata
import threading
import time
import urllib.robotparser
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from backend.core.net import Refused, check_url
from backend.core.pinned import PinnedBackend, PinnedTransport
from backend.settings import FollowSettings

ROBOTS_TTL_S = 3600.0
# RFC 9309 asks a crawler to read at least 500 KiB of a robots.txt.
ROBOTS_MAX_BYTES = 512_000
# A longer Crawl-delay counts as this: the poller's own interval keeps such a host's requests rare anyway,
# and one fetch must not hold its caller for an hour.
MAX_CRAWL_DELAY_S = 60.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TIMEOUTS = (httpcore.TimeoutException, httpx.TimeoutException)
_BROKEN = (
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
    httpx.HTTPError,
    httpx.InvalidURL,
    httpx.StreamError,
    OSError,
    UnicodeError,
)


@dataclass(frozen=True, slots=True)
class Fetched:
    url: str  # the final URL, after redirects
    status: int  # 200, or 304 (not modified; body b"")
    body: bytes
    etag: str | None
    last_modified: str | None
    content_type: str | None


class FetchError(Exception):
    """Every failure of a fetch, in words fit for a health page."""

    def __init__(self, message: str, *, status: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


class RobotsDenied(FetchError):
    """The host's robots.txt forbids the URL to Byline."""


def _version() -> str:
    try:
        return importlib.metadata.version("byline")
    except importlib.metadata.PackageNotFoundError:
        return "0.1.0"


@dataclass(slots=True)
class _Robots:
    parser: urllib.robotparser.RobotFileParser | None  # None: no robots.txt, everything allowed
    read_at: float
    crawl_delay_s: float


class _Budget:
    """The network time a fetch has left; waiting for a host's turn does not spend it."""

    def __init__(self, seconds: float) -> None:
        self.left = seconds

    @contextmanager
    def spending(self) -> Iterator[float]:
        start = time.monotonic()
        try:
            yield start + self.left
        finally:
            self.left -= time.monotonic() - start


def retry_after_s(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _content_length(headers: httpx.Headers) -> int | None:
    value = headers.get("content-length")
    try:
        return int(value.split(",")[0]) if value else None
    except ValueError:
        return None


class Fetcher:
    """Fetches feeds, sitemaps and pages for the follower; see the module docstring for the rules."""

    def __init__(
        self,
        settings: FollowSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.user_agent = f"Byline/{_version()} (+news archive follower)"
        self._allowed = settings.networks()
        # The clock and sleep pace the hosts and age robots.txt; deadlines run on the real clock, as sockets do.
        self._sleep, self._clock = sleep, clock
        self._backend = PinnedBackend()
        self._client = httpx.Client(
            transport=PinnedTransport(self._backend),
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: it would connect where the check did not look
            headers={"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"},
        )
        self._lock = threading.Lock()
        self._last_request: dict[str, float] = {}  # host -> when its latest request was let go (clock)
        self._robots: dict[str, _Robots] = {}  # origin -> its robots.txt

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(self, url: str, *, max_bytes: int, etag: str | None = None, last_modified: str | None = None) -> Fetched:
        """``url``'s body, or status 304 with an empty body when the validators still match."""
        headers = {"Accept": "*/*"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return self._follow(
            url, max_bytes, headers, robots=self.settings.respect_robots, validators=(etag, last_modified)
        )

    def _follow(
        self,
        url: str,
        max_bytes: int,
        headers: dict[str, str],
        *,
        robots: bool,
        validators: tuple[str | None, str | None] = (None, None),
    ) -> Fetched:
        budget = _Budget(self.settings.timeout_s)
        seen = {url}
        current = url
        for _ in range(self.settings.max_redirects + 1):
            result = self._hop(current, max_bytes, headers, budget, validators, robots=robots)
            if isinstance(result, Fetched):
                return result
            if result in seen:
                raise FetchError(f"too many redirects: {current} leads back to {result}, a loop (from {url})")
            seen.add(result)
            current = result
        raise FetchError(f"too many redirects: more than {self.settings.max_redirects} from {url}")

    def _hop(
        self,
        url: str,
        max_bytes: int,
        headers: dict[str, str],
        budget: _Budget,
        validators: tuple[str | None, str | None],
        *,
        robots: bool,
    ) -> Fetched | str:
        """One request: a ``Fetched``, or the URL a redirect points to. The URL is checked before its robots.txt
        is asked, so a refused URL says so rather than blaming its robots.txt."""
        try:
            addresses = check_url(url, self._allowed)
            target = httpx.URL(url)
        except Refused as exc:
            raise FetchError(f"{url} refused: {exc}") from exc
        except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
            raise FetchError(f"{url} is not a URL Byline can fetch: {exc}") from exc
        if robots:
            self._check_robots(url)
        host = target.raw_host.decode("ascii").lower()
        self._wait_turn(host)
        try:
            with (
                budget.spending() as deadline,
                self._backend.hop(host, addresses, deadline),
                self._client.stream("GET", target, headers=headers, timeout=max(budget.left, 0.001)) as response,
            ):
                return self._read(response, url, max_bytes, deadline, validators)
        except FetchError:
            raise
        except _TIMEOUTS as exc:
            raise FetchError(f"fetching {url} took longer than {self.settings.timeout_s:g} s") from exc
        except httpcore.ConnectError as exc:
            raise FetchError(f"could not connect to {target.host}: {exc}") from exc
        except _BROKEN as exc:
            raise FetchError(f"fetching {url} failed: {exc or type(exc).__name__}") from exc

    def _read(
        self,
        response: httpx.Response,
        url: str,
        max_bytes: int,
        deadline: float,
        validators: tuple[str | None, str | None],
    ) -> Fetched | str:
        status = response.status_code
        if status in _REDIRECTS:
            location = str(response.headers.get("location", "")).strip()
            if not location:
                raise FetchError(f"{url} answered {status} without saying where to (no Location)", status=status)
            return urljoin(url, location)
        etag = response.headers.get("etag") or validators[0]
        last_modified = response.headers.get("last-modified") or validators[1]
        content_type = response.headers.get("content-type")
        if status == 304:
            return Fetched(url, 304, b"", etag, last_modified, content_type)
        if not 200 <= status < 300:
            wait = retry_after_s(response.headers.get("retry-after"))
            later = f"; it asks to retry after {wait:g} s" if wait is not None else ""
            raise FetchError(
                f"{url} answered {status} {response.reason_phrase}".rstrip() + later, status=status, retry_after_s=wait
            )
        declared = _content_length(response.headers)
        if declared is not None and declared > max_bytes:
            raise FetchError(f"{url} is larger than {max_bytes} bytes (Content-Length {declared})", status=status)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(f"{url} is larger than {max_bytes} bytes", status=status)
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise FetchError(f"fetching {url} took longer than {self.settings.timeout_s:g} s", status=status)
        return Fetched(url, status, b"".join(chunks), etag, last_modified, content_type)

    def _wait_turn(self, host: str) -> None:
        """Sleeps until ``host`` may have its next request, and books that turn."""
        with self._lock:
            interval = max(
                [self.settings.host_interval_s]
                + [r.crawl_delay_s for origin, r in self._robots.items() if urlsplit(origin).hostname == host]
            )
            now = self._clock()
            last = self._last_request.get(host)
            turn = now if last is None else max(now, last + interval)
            self._last_request[host] = turn
        if turn > now:
            self._sleep(turn - now)

    def _check_robots(self, url: str) -> None:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc.lower()}"
        rules = self._robots_for(origin)
        if rules.parser is not None and not rules.parser.can_fetch(self.user_agent, url):
            raise RobotsDenied(f"robots.txt of {parts.hostname} forbids {url} to Byline")

    def _robots_for(self, origin: str) -> _Robots:
        with self._lock:
            cached = self._robots.get(origin)
        if cached is not None and self._clock() - cached.read_at < ROBOTS_TTL_S:
            return cached
        host = urlsplit(origin).hostname
        try:
            fetched = self._follow(f"{origin}/robots.txt", ROBOTS_MAX_BYTES, {"Accept": "text/plain"}, robots=False)
        except FetchError as exc:
            if exc.status is None or not 400 <= exc.status < 500:
                raise FetchError(
                    f"robots.txt of {host} could not be read, trying later: {exc}",
                    status=exc.status,
                    retry_after_s=exc.retry_after_s,
                ) from exc
            rules = _Robots(None, self._clock(), 0.0)  # no robots.txt: everything is allowed
        else:
            parser = urllib.robotparser.RobotFileParser()
            parser.parse(fetched.body.decode("utf-8", errors="replace").splitlines())
            delay = parser.crawl_delay(self.user_agent)
            rules = _Robots(parser, self._clock(), min(float(delay or 0.0), MAX_CRAWL_DELAY_S))
        with self._lock:
            self._robots[origin] = rules
        return rules
