"""The FastAPI application, built around already constructed services."""

from __future__ import annotations

from fastapi import FastAPI

from backend.api.errors import install_error_handlers
from backend.api.routes import archive, ask, health, search, sessions
from backend.services import Services


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Byline",
        summary="Questions over a news archive, answered with citations to the articles.",
        version="0.1.0",
    )
    app.state.services = services
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(search.router)
    app.include_router(ask.router)
    app.include_router(sessions.router)
    app.include_router(archive.router)
    return app
