"""The API as ``byline serve`` runs it: services from the environment's settings, writes accepted.

An app factory, so uvicorn can start several worker processes, each building its own services.
"""

from __future__ import annotations

from typing import IO

from fastapi import FastAPI

from backend.api.app import create_app
from backend.services import build_services
from backend.settings import get_settings
from backend.store.ownership import hold_for_server
from ingest.writer import with_writer

_held: list[IO[str]] = []  # the served-directory mark, open for the process's life


def create() -> FastAPI:
    settings = get_settings()
    if settings.chroma.mode == "embedded":
        _held.append(hold_for_server(settings.data_dir))
    services = with_writer(build_services(settings))
    services.embedder.load()  # before the first request, not during it
    services.lexical.warm()
    return create_app(services)
