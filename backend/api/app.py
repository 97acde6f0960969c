"""The FastAPI application, built around already constructed services."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from backend.api.auth import require_key
from backend.api.errors import install_error_handlers
from backend.api.routes import archive, ask, feedback, health, search, sessions
from backend.services import Services


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Byline",
        summary="Questions over a news archive, answered with citations to the articles.",
        version="0.1.0",
    )
    app.state.services = services
    install_error_handlers(app)
    app.include_router(health.router)  # /health and /ready stay open for probes
    protected = [Depends(require_key)]
    for module in (search, ask, sessions, archive, feedback):
        app.include_router(module.router, dependencies=protected)
    return app
