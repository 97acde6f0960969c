"""Every error leaves as RFC 9457 problem+json with a readable message, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.api.auth import check_caller
from backend.api.deps import get_services
from backend.core.errors import BylineError

log = logging.getLogger("byline.api")

PROBLEM_JSON = "application/problem+json"


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


OPEN_PATHS = ("/health", "/ready")  # open to probes: no key is asked there
_TITLES = {413: "Request body too large", 404: "Not found", 405: "Method not allowed"}


def _describe(error: dict[str, object]) -> str:
    loc = ".".join(str(p) for p in error.get("loc", ()) if p != "body")  # type: ignore[attr-defined]
    msg = str(error.get("msg", "invalid value"))
    return f"{loc}: {msg}" if loc else msg


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = "; ".join(_describe(e) for e in exc.errors())
        return problem(422, "Invalid request", detail)

    @app.exception_handler(BylineError)
    async def _domain(_: Request, exc: BylineError) -> JSONResponse:
        retry = getattr(exc, "retry_after_s", None)
        headers = {"Retry-After": str(retry)} if retry is not None else None
        return problem(exc.status, exc.title, str(exc) or exc.title, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code in (404, 405) and not request.url.path.endswith(OPEN_PATHS):
            # With keys configured, a path no route serves answers like one that does: 401 without a
            # valid key, so guessing paths tells a keyless client nothing about which routes exist.
            try:
                check_caller(request, get_services(request), write=False)
            except BylineError as refused:
                return await _domain(request, refused)
        title = _TITLES.get(exc.status_code, str(exc.detail))
        return problem(exc.status_code, title, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "Internal error", "The server could not answer this request; the error was logged.")


_PROBLEM_SCHEMA = {
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
}


def document_problems(app: FastAPI) -> None:
    """Every error in the OpenAPI schema as it leaves: problem+json, for any 4xx of any route."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = _PROBLEM_SCHEMA
        problem_content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                for code, response in responses.items():
                    if code[0] in "45":
                        response["content"] = problem_content
                responses["4XX"] = {
                    "description": "A problem with the request (problem+json)",
                    "content": problem_content,
                }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
