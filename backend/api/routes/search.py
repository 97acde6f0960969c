from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from backend.api.deps import get_services
from backend.api.schemas import ReadingOut, SearchRequest, SearchResponse, SearchResult
from backend.core.dates import today_utc
from backend.services import Services

router = APIRouter(tags=["questions"])


@router.post("/search")
def search(body: SearchRequest, services: Annotated[Services, Depends(get_services)]) -> SearchResponse:
    """Ranked passages, best first; nothing published after ``as_of`` (default: today, UTC).

    Time ("last week", "in May") and outlets ("according to Reuters") in the query are read
    against ``as_of``; ``reading`` says how, so a client can show it.
    """
    as_of = body.as_of or today_utc()
    query = services.reader.query(
        body.query, k=body.k, as_of=as_of, filters=body.filters.to_core() if body.filters else None
    )
    with services.pools.in_flight.question():
        hits = services.retriever.retrieve(query)
    return SearchResponse(
        results=[SearchResult.from_hit(h) for h in hits], as_of=as_of, reading=ReadingOut.from_core(query.reading)
    )
