from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from backend.answering.providers import llm_problem
from backend.api.deps import get_services
from backend.api.errors import problem
from backend.api.schemas import HealthResponse, ReadyOut
from backend.core.errors import StoreUnavailable
from backend.services import Services

router = APIRouter(tags=["ops"])


@router.api_route("/health", methods=["GET", "HEAD"])
def health(services: Annotated[Services, Depends(get_services)]) -> HealthResponse:
    """The process is alive (``chunks`` is null while the store cannot be read: ``/ready`` says why)."""
    try:
        chunks: int | None = services.store.count()
    except StoreUnavailable:
        chunks = None
    return HealthResponse(status="ok", chunks=chunks)


@router.api_route(
    "/ready",
    methods=["GET", "HEAD"],
    response_model=ReadyOut,
    responses={503: {"description": "Not ready: the detail says what is missing"}},
)
def ready(services: Annotated[Services, Depends(get_services)]) -> ReadyOut | JSONResponse:
    """Ready to answer: the store is readable, the embedding model loaded, the LLM (if any) reachable."""
    problems: list[str] = []
    checks: dict[str, str] = {}
    try:
        checks["store"] = f"{services.store.count()} chunks"
    except Exception as exc:  # a store that cannot be read is the answer, not an error
        problems.append(f"store unreadable: {type(exc).__name__}")
    try:
        checks["embedder"] = f"{services.embedder.dimension} dimensions"
    except Exception as exc:
        problems.append(f"embedding model not loaded: {type(exc).__name__}")
    reason = llm_problem(services.settings.llm)
    if reason:
        problems.append(reason)
    else:
        checks["llm"] = services.settings.llm.provider
    if problems:
        return problem(503, "Not ready", "; ".join(problems))
    return ReadyOut(status="ready", checks=checks)
