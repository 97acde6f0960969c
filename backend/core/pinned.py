"""Connections only to the addresses an SSRF check approved, and only until a deadline: for every request
Byline makes to a URL someone gave it (a followed source, an article page, a webhook).

``backend.core.net.check_url`` resolves a host once and checks every address; this httpcore network backend
then connects to those addresses and no others, so a host that resolves to a public address for the check
and to 127.0.0.1 a moment later (DNS rebinding) gets nothing. The URL keeps its host name, so the ``Host``
header, TLS's SNI and the certificate check are httpx's and httpcore's own, and a pooled connection is only
reused for the host it was opened for. The backend refuses any host it was not told about for the current
request (``hop``). Every connect, read and write is clamped to what is left of the request's deadline, since
httpx's timeouts are per socket operation and a server dripping a byte at a time would never trip them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import httpcore
import httpx

from backend.core.net import Address

_E = TypeVar("_E", bound=Exception)


class PinnedBackend(httpcore.NetworkBackend):
    """Connects only to the addresses the SSRF check approved for this hop, and only until its deadline.

    The hop's host, addresses and deadline are per thread, so one fetcher can serve several threads."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()
        self._local = threading.local()

    @contextmanager
    def hop(self, host: str, addresses: Sequence[Address], deadline: float) -> Iterator[None]:
        self._local.host, self._local.addresses, self._local.deadline = host, tuple(addresses), deadline
        try:
            yield
        finally:
            self._local.host, self._local.addresses, self._local.deadline = None, (), None

    def clamp(self, timeout: float | None, error: type[_E]) -> float | None:
        deadline: float | None = getattr(self._local, "deadline", None)
        if deadline is None:
            return timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise error("the fetch ran out of time")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        if host.lower() != getattr(self._local, "host", None):
            raise httpcore.ConnectError(f"{host} was not checked for this request")  # never an unchecked address
        failure: httpcore.ConnectError | None = None
        for address in self._local.addresses:
            try:
                stream = self._inner.connect_tcp(
                    str(address), port, self.clamp(timeout, httpcore.ConnectTimeout), local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc  # the next address the host resolved to may answer
                continue
            return _Stream(stream, self)
        raise failure or httpcore.ConnectError(f"{host} has no address to connect to")

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are never fetched")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, backend: PinnedBackend) -> None:
        self._inner, self._backend = inner, backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._backend.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._backend.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = self._backend.clamp(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout), self._backend)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class PinnedTransport(httpx.BaseTransport):
    """httpx over an httpcore pool on the pinned backend (httpx's own transport takes no backend)."""

    def __init__(self, backend: PinnedBackend) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=backend, keepalive_expiry=5.0
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._pool.handle_request(
            httpcore.Request(
                method=request.method,
                url=httpcore.URL(
                    scheme=request.url.raw_scheme,
                    host=request.url.raw_host,
                    port=request.url.port,
                    target=request.url.raw_path,
                ),
                headers=request.headers.raw,
                content=request.stream,
                extensions=request.extensions,
            )
        )
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()
