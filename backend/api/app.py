"""The FastAPI application, built around already constructed services."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from backend.api.auth import require_admin, require_key
from backend.api.errors import document_problems, install_error_handlers
from backend.api.limits import BodyLimit, RateLimiter
from backend.api.routes import archive, ask, docs, feedback, feeds, health, openai_compat, search, sessions, watches
from backend.services import Services

# Work a server does beside its requests (the poller of followed sources): a name and a function that runs
# until the event it is given is set.
Task = tuple[str, Callable[[threading.Event], None]]
_TASK_STOP_S = 30.0


def create_app(services: Services, *, close_services: bool = False, tasks: Sequence[Task] = ()) -> FastAPI:
    """``close_services``: the app closes the services when it stops, for the process that built them for it
    (``byline serve``); tests that share one services object among several apps leave them open. ``tasks``
    run in threads of their own while the app serves, and are told to stop before the services close."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        threads = [threading.Thread(target=run, args=(stop,), name=name, daemon=True) for name, run in tasks]
        for thread in threads:
            thread.start()
        yield
        stop.set()
        for thread in threads:
            thread.join(_TASK_STOP_S)
        if close_services:
            services.close()

    limits = services.settings.api
    app = FastAPI(
        lifespan=lifespan,
        title="Byline",
        summary="Questions over a news archive, answered with citations to the articles.",
        version="0.1.0",
        # Served by routes/docs.py instead, behind the key check unless api.open_docs says otherwise.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    app.state.limiter = RateLimiter(limits.rate_per_minute, limits.rate_burst) if limits.rate_per_minute else None
    install_error_handlers(app)
    document_problems(app)
    app.include_router(health.router)  # /health and /ready stay open for probes
    reader, admin = [Depends(require_key)], [Depends(require_admin)]
    app.include_router(docs.router, dependencies=[] if limits.open_docs else reader)
    for module in (search, ask, sessions, watches, archive, feedback, feeds, openai_compat):
        app.include_router(module.router, dependencies=reader)
    app.include_router(archive.write_router, dependencies=admin)
    app.include_router(feeds.write_router, dependencies=admin)
    app.include_router(archive.upload_router, dependencies=admin)
    app.add_middleware(BodyLimit, default=limits.max_body_bytes, per_path={"/articles/files": limits.max_upload_bytes})
    return app
