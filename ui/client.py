"""A small HTTP client for the Byline API that turns every failure into a readable ``ApiError``."""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(Exception):
    """Something the chat shows to the user as a message, not a traceback."""


class BylineClient:
    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            response = httpx.post(f"{self._base_url}{path}", json=payload, timeout=self._timeout)
        except httpx.TimeoutException as exc:
            raise ApiError("The Byline server took too long to answer. Try again in a moment.") from exc
        except httpx.HTTPError as exc:
            raise ApiError(f"Cannot reach the Byline server at {self._base_url}. Is it running?") from exc
        if response.status_code >= 400:
            raise ApiError(_problem_message(response))
        body = response.json()
        if not isinstance(body, dict):
            raise ApiError("The Byline server sent an unexpected reply.")
        return body

    def ask(self, question: str, session_id: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"question": question}
        if session_id:
            payload["session_id"] = session_id
        return self._post("/ask", payload)


def _problem_message(response: httpx.Response) -> str:
    try:
        body = response.json()
        detail = body.get("detail") or body.get("title")
    except ValueError:
        detail = None
    return f"The server refused the request ({response.status_code}): {detail or response.reason_phrase}"
