"""The API as ``byline serve`` runs it: services from the environment's settings, writes accepted.

An app factory, so uvicorn can start several worker processes, each building its own services.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
import threading
from typing import IO, Any

from fastapi import FastAPI

from backend.api.app import Task, create_app
from backend.core.errors import EncoderMismatch
from backend.services import Services, build_services, start_watching
from backend.settings import Settings, get_settings
from backend.store.ownership import hold_for_server
from ingest.writer import with_writer

_held: list[IO[str]] = []  # the served-directory mark, open for the process's life
_M_ARENA_MAX = -8  # glibc's mallopt parameter
_ARENAS = 2


def limit_malloc_arenas() -> bool:
    """Cap glibc's malloc arenas, as MALLOC_ARENA_MAX would, unless that variable says otherwise.

    glibc gives each thread that allocates under contention an arena of its own (up to 8 per core), and
    request threads that tokenise and encode leave each arena holding freed memory: measured on the
    200k-chunk archive after 120 questions from 16 threads, 1,818 MiB resident against 1,400 MiB with
    two arenas, and no slower. Done before the request threads start; a no-op off glibc."""
    if sys.platform != "linux" or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, _ARENAS))
    except (OSError, AttributeError):
        logging.getLogger("byline").debug("mallopt unavailable; malloc arenas not capped")
        return False


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's reading of forwarded headers, from ``api.trusted_proxies``.

    uvicorn believes X-Forwarded-For from loopback by default, so anyone on this host could pick the
    address their failed keys are counted against; here only the named proxies are believed."""
    proxies = settings.api.trusted_proxies.strip()
    return {"proxy_headers": bool(proxies), "forwarded_allow_ips": proxies or None}


def create() -> FastAPI:
    limit_malloc_arenas()
    settings = get_settings()
    if settings.chroma.mode == "embedded":
        _held.append(hold_for_server(settings.data_dir))
    try:
        services = build_services(settings)
    except EncoderMismatch as exc:  # never serve questions embedded by one model against another's vectors
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from exc
    services.embedder.load()  # before the first request, not during it
    services.lexical.warm()
    if settings.watches.enabled:  # saved questions are checked in threads of their own, fed by every write
        services = start_watching(services)
    services = with_writer(services, on_stored=services.watching.runner.notify if services.watching else None)
    # built here, so closed when the server stops
    return create_app(services, close_services=True, tasks=follow_tasks(services))


def follow_tasks(services: Services) -> list[Task]:
    """The poller of the followed sources: it polls while this process holds the archive's follow lock, and
    stands by while another worker, replica or ``byline follow`` does (``keep_following``)."""
    if not services.settings.follow.enabled or services.writer is None:
        return []
    from ingest.follow.poller import Poller, keep_following

    poller = Poller(services.settings.follow, services.feeds, services.writer, in_flight=services.pools.in_flight)

    def run(stop: threading.Event) -> None:
        try:
            keep_following(poller, services.settings, stop)
        finally:
            poller.close()

    return [("byline-follow", run)]
