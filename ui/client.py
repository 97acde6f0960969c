"""A small HTTP client for the Byline API that turns every failure into a readable ``ApiError``.

The UI shows ``str(ApiError)`` as it is, so each message says what happened and what to do about it;
nothing here ever lets an ``httpx`` exception or a traceback reach the page.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import quote

import httpx

JSONDict = dict[str, Any]


class ApiError(Exception):
    """Something the UI shows to the user as a message, not a traceback."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Filters:
    """The sidebar's narrowing of the archive, as ``/ask`` and ``/search`` take it."""

    sources: tuple[str, ...] = ()
    published_after: date | None = None
    published_before: date | None = None

    def to_json(self) -> JSONDict | None:
        if not (self.sources or self.published_after or self.published_before):
            return None
        return {
            "sources": list(self.sources),
            "published_after": self.published_after.isoformat() if self.published_after else None,
            "published_before": self.published_before.isoformat() if self.published_before else None,
        }


@dataclass(frozen=True)
class Event:
    """One server-sent event of ``/ask/stream``: ``start``, ``token`` or ``answer``."""

    name: str
    data: JSONDict = field(default_factory=dict)


class BylineClient:
    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 60.0) -> None:
        self._base_url = base_url.strip().rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key.strip()}"} if api_key and api_key.strip() else {}
        self._timeout = timeout

    # -- questions ---------------------------------------------------------------------------------

    def ask(
        self,
        question: str,
        session_id: str | None = None,
        *,
        as_of: date | None = None,
        filters: Filters | None = None,
    ) -> JSONDict:
        return self._json("POST", "/ask", json=_ask_body(question, session_id, as_of, filters))

    def ask_stream(
        self,
        question: str,
        session_id: str | None = None,
        *,
        as_of: date | None = None,
        filters: Filters | None = None,
    ) -> Iterator[Event]:
        """The events of ``/ask/stream`` as they arrive; an ``error`` event or a cut stream raises ApiError."""
        body = _ask_body(question, session_id, as_of, filters)
        finished = False
        with (
            self._guard(),
            httpx.stream(
                "POST", self._url("/ask/stream"), json=body, headers=self._headers, timeout=self._timeout
            ) as response,
        ):
            if response.status_code >= 400:
                response.read()
                raise ApiError(problem_message(response), response.status_code)
            for event in _server_sent_events(response.iter_lines()):
                if event.name == "error":
                    title = event.data.get("title") or "Error"
                    detail = event.data.get("detail") or "the answer could not be finished"
                    raise ApiError(f"The server stopped while answering: {title}: {detail}")
                finished = finished or event.name == "answer"
                yield event
        if not finished:
            raise ApiError("The answer was cut off before it was finished. Try asking again.")

    def search(self, query: str, k: int = 10, *, as_of: date | None = None, filters: Filters | None = None) -> JSONDict:
        body: JSONDict = {
            "query": query,
            "k": k,
            "as_of": _day(as_of),
            "filters": filters.to_json() if filters else None,
        }
        return self._json("POST", "/search", json=body)

    def feedback(self, session_id: str, turn: int, rating: str, comment: str = "") -> JSONDict:
        body = {"session_id": session_id, "turn": turn, "rating": rating, "comment": comment}
        return self._json("POST", "/feedback", json=body)

    # -- conversations -----------------------------------------------------------------------------

    def sessions(self, limit: int = 20) -> list[JSONDict]:
        return list(self._json("GET", "/sessions", params={"limit": limit}).get("sessions", []))

    def session(self, session_id: str) -> JSONDict:
        return self._json("GET", f"/sessions/{session_id}")

    # -- the archive -------------------------------------------------------------------------------

    def archive(self) -> JSONDict:
        return self._json("GET", "/archive")

    def article(self, article_id: str) -> JSONDict:
        return self._json("GET", f"/articles/{_path_part(article_id)}")

    def articles(self, limit: int = 20, offset: int = 0, source: str | None = None, q: str | None = None) -> JSONDict:
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if source:
            params["source"] = source
        if q and q.strip():
            params["q"] = q.strip()
        return self._json("GET", "/articles", params=params)

    def formats(self) -> JSONDict:
        """The kinds of file ``upload`` may send, with their suffixes (a read-only server answers 503)."""
        return self._json("GET", "/archive/formats")

    def upload(self, files: Sequence[tuple[str, bytes]]) -> list[JSONDict]:
        """Files to ingest, as (name, content); the server reads each by its name's extension."""
        parts = [("files", (name, content, "application/octet-stream")) for name, content in files]
        return list(self._json("POST", "/articles/files", files=parts).get("files", []))

    def add_articles(self, records: Sequence[JSONDict]) -> JSONDict:
        return self._json("POST", "/articles", json={"articles": list(records)})

    # -- saved questions (scoped to the API key) ----------------------------------------------------

    def watches(self) -> JSONDict:
        """``{watches, unread}``: the caller's saved questions, newest first, and their unread events in all."""
        return self._json("GET", "/watches")

    def create_watch(
        self, question: str, *, filters: Filters | None = None, webhook_url: str | None = None
    ) -> JSONDict:
        """The new watch; with ``webhook_url`` it carries ``webhook_secret``, which no later reply repeats."""
        body: JSONDict = {"question": question}
        if filters and (wire := filters.to_json()):
            body["filters"] = wire
        if webhook_url and webhook_url.strip():
            body["webhook_url"] = webhook_url.strip()
        return self._json("POST", "/watches", json=body)

    def delete_watch(self, watch_id: str) -> None:
        self._send("DELETE", f"/watches/{_path_part(watch_id)}")

    def watch_events(self, watch_id: str, limit: int = 20, offset: int = 0, unread: bool = False) -> list[JSONDict]:
        """The articles that answered the watch, newest first, each with its answer."""
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if unread:
            params["unread"] = "true"
        path = f"/watches/{_path_part(watch_id)}/events"
        return list(self._json("GET", path, params=params).get("events", []))

    def mark_read(self, watch_id: str) -> None:
        self._send("POST", f"/watches/{_path_part(watch_id)}/read")

    # -- followed sources --------------------------------------------------------------------------

    def feeds(self) -> list[JSONDict]:
        """Every followed source with its health."""
        return list(self._json("GET", "/feeds").get("feeds", []))

    def follow(self, url: str, title: str | None = None, interval_s: float | None = None) -> JSONDict:
        """Follow a feed or news sitemap (an admin key where keys are set)."""
        body: JSONDict = {"url": url.strip()}
        if title and title.strip():
            body["title"] = title.strip()
        if interval_s is not None:
            body["interval_s"] = interval_s
        return self._json("POST", "/feeds", json=body)

    def unfollow(self, feed_id: str) -> None:
        """Stop following a source; the articles it brought stay."""
        self._send("DELETE", f"/feeds/{_path_part(feed_id)}")

    # -- plumbing ----------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self._base_url}{path}"

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The response of a request that succeeded; a failure raises ApiError with the server's message."""
        with self._guard():
            response = httpx.request(method, self._url(path), headers=self._headers, timeout=self._timeout, **kwargs)
        if response.status_code >= 400:
            raise ApiError(problem_message(response), response.status_code)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> JSONDict:
        response = self._send(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ApiError("The Byline server sent an unexpected reply. Is BYLINE_API_URL the API's address?")
        return body

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Transport failures become ApiError, so a caller catches one exception type."""
        try:
            yield
        except httpx.TimeoutException as exc:
            raise ApiError("The Byline server took too long to answer. Try again in a moment.") from exc
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise ApiError(f"{self._base_url!r} is not a usable API address (expected http://host:port).") from exc
        except httpx.HTTPError as exc:
            raise ApiError(f"Cannot reach the Byline server at {self._base_url}. Is it running?") from exc


def problem_message(response: httpx.Response) -> str:
    """A sentence for an error response: auth, rate limit and readiness get advice, the rest the server's detail."""
    detail: str | None = None
    try:
        body = response.json()
        if isinstance(body, dict):
            detail = str(body.get("detail") or body.get("title") or "") or None
    except ValueError:
        pass
    status = response.status_code
    reason = detail or response.reason_phrase
    wait = response.headers.get("Retry-After", "").strip()
    when = f"in {wait} seconds" if wait.isdigit() else "in a moment"
    if status == 401:
        return f"The server needs a valid API key ({reason}). Set BYLINE_API_KEY or enter the key in the sidebar."
    if status == 403:
        return f"This API key is not allowed to do that ({reason})."
    if status == 429:
        return f"Too many requests: the server asks to try again {when}."
    if status == 503:
        return f"The Byline server is unavailable ({reason}). Try again {when}."
    if status == 404:
        return f"Not found: {reason}."
    if status == 413:
        return f"That is too large for the server ({reason})."
    return f"The server refused the request ({status}): {reason}"


def _ask_body(question: str, session_id: str | None, as_of: date | None, filters: Filters | None) -> JSONDict:
    body: JSONDict = {"question": question}
    if session_id:
        body["session_id"] = session_id
    if as_of:
        body["as_of"] = as_of.isoformat()
    if filters and (wire := filters.to_json()):
        body["filters"] = wire
    return body


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _path_part(value: str) -> str:
    """An id inside a URL path: quoted so that ``/`` or ``?`` in an id cannot change the route."""
    return quote(value, safe="")


def _server_sent_events(lines: Iterator[str]) -> Iterator[Event]:
    """Server-sent events from text lines (``event:``/``data:`` fields, a blank line ends one)."""
    name, data = "message", list[str]()
    for line in itertools.chain(lines, [""]):  # a last event without its blank line still counts
        if not line:
            if data:
                try:
                    payload = json.loads("\n".join(data))
                except ValueError as exc:
                    raise ApiError("The Byline server sent an unreadable event.") from exc
                yield Event(name, payload if isinstance(payload, dict) else {"value": payload})
            name, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
