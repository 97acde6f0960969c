from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from backend.api.deps import get_services
from backend.api.schemas import HealthResponse
from backend.services import Services

router = APIRouter(tags=["ops"])


@router.get("/health")
def health(services: Annotated[Services, Depends(get_services)]) -> HealthResponse:
    return HealthResponse(status="ok", chunks=services.store.count())
