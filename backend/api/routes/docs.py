"""The schema and the interactive docs, served like any other reading route.

FastAPI's own ``/docs``, ``/redoc`` and ``/openapi.json`` answer anyone; here they sit behind the key
check when keys are configured, unless ``api.open_docs`` opens them (``create_app`` decides).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


def _schema_url(request: Request) -> str:
    return str(request.scope.get("root_path", "")) + "/openapi.json"


@router.get("/openapi.json")
def openapi(request: Request) -> dict[str, Any]:
    return request.app.openapi()  # type: ignore[no-any-return]


@router.get("/docs")
def swagger(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=_schema_url(request), title="Byline API")


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url=_schema_url(request), title="Byline API")
