"""Rate limiting: one token bucket per caller, in process memory.

Per process by design: several API workers each allow the configured rate, so a deployment with
N workers allows N times as much (docs/operations.md says so); a shared limiter belongs in the reverse proxy.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_MAX_CALLERS = 10_000  # least recently seen callers are forgotten beyond this (a full bucket again)


class RateLimiter:
    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # caller -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, caller: str) -> int:
        """Spend one request; 0 when allowed, else the whole seconds to wait before the next one."""
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.pop(caller, (self._burst, now))
            tokens = min(self._burst, tokens + (now - then) * self._rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[caller] = (tokens, now)
            if len(self._buckets) > _MAX_CALLERS:
                self._buckets.popitem(last=False)
        return 0 if allowed else max(1, math.ceil((1.0 - tokens) / self._rate))


class BodyLimit:
    """413 for a request body beyond its limit: at once from Content-Length, else counted as it
    arrives, so a chunked body is cut off too. ``per_path`` sets other limits (uploads)."""

    def __init__(self, app: ASGIApp, default: int, per_path: dict[str, int]) -> None:
        self.app = app
        self._default = default
        self._per_path = per_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._per_path.get(scope["path"], self._default)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI lets an HTTPException from reading the body through to the handlers.
                    # Connection: close, since the rest of the body is never read off the connection.
                    raise HTTPException(413, _too_large_detail(limit), headers={"Connection": "close"})
            return message

        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except HTTPException as exc:
            if exc.status_code != 413 or started:
                raise
            await _too_large(limit)(scope, receive, send)


def _too_large_detail(limit: int) -> str:
    return f"the request body is larger than this route accepts ({limit:,} bytes)"


def _too_large(limit: int) -> JSONResponse:
    body = {"type": "about:blank", "title": "Request body too large", "status": 413, "detail": _too_large_detail(limit)}
    return JSONResponse(body, status_code=413, media_type="application/problem+json", headers={"Connection": "close"})
