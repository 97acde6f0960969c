from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from backend.api.deps import get_services
from backend.api.schemas import SearchRequest, SearchResponse, SearchResult
from backend.core.dates import today_utc
from backend.core.types import SearchFilters, SearchQuery
from backend.services import Services

router = APIRouter(tags=["questions"])


@router.post("/search")
def search(body: SearchRequest, services: Annotated[Services, Depends(get_services)]) -> SearchResponse:
    """Ranked passages, best first; nothing published after ``as_of`` (default: today, UTC)."""
    query = SearchQuery(
        text=body.query,
        k=body.k,
        as_of=body.as_of or today_utc(),
        filters=body.filters.to_core() if body.filters else SearchFilters(),
    )
    return SearchResponse(results=[SearchResult.from_hit(h) for h in services.retriever.retrieve(query)])
