from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from backend.api.deps import get_services
from backend.api.schemas import AskRequest, AskResponse
from backend.core.dates import today_utc
from backend.services import Services

router = APIRouter(tags=["questions"])


@router.post("/ask")
def ask(body: AskRequest, services: Annotated[Services, Depends(get_services)]) -> AskResponse:
    """An answer with numbered citations; pass the returned ``session_id`` back for follow-ups."""
    as_of = body.as_of or today_utc()
    answer = services.answers.ask(
        body.question,
        session_id=body.session_id,
        as_of=as_of,
        filters=body.filters.to_core() if body.filters else None,
        k=body.k,
    )
    return AskResponse.from_core(answer, as_of)
