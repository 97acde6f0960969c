from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from backend.api.auth import Owner
from backend.api.deps import get_services
from backend.api.schemas import FeedbackCreated, FeedbackRequest
from backend.services import Services

router = APIRouter(tags=["feedback"])


@router.post("/feedback", status_code=201, responses={404: {"description": "No such conversation or turn"}})
def feedback(
    body: FeedbackRequest, services: Annotated[Services, Depends(get_services)], owner: Owner
) -> FeedbackCreated:
    """A thumbs up or down (and an optional comment) on one answer of one of the caller's conversations."""
    fid = services.feedback.add(services.sessions, body.session_id, body.turn, body.rating, body.comment, owner)
    return FeedbackCreated(id=fid)
