from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from backend.api.deps import get_services
from backend.api.schemas import SessionList, SessionOut, SessionSummaryOut, TurnOut
from backend.services import Services

router = APIRouter(tags=["sessions"])

SessionId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


@router.get("/sessions")
def list_sessions(
    services: Annotated[Services, Depends(get_services)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> SessionList:
    """Conversations, most recently active first (older than the configured age are deleted)."""
    return SessionList(sessions=[SessionSummaryOut.from_core(s) for s in services.sessions.summaries(limit, offset)])


@router.get("/sessions/{session_id}", responses={404: {"description": "No such conversation"}})
def get_session(session_id: SessionId, services: Annotated[Services, Depends(get_services)]) -> SessionOut:
    """Every turn of a conversation with its citations."""
    return SessionOut(id=session_id, turns=[TurnOut.from_core(t) for t in services.sessions.turns(session_id)])


@router.delete("/sessions/{session_id}", status_code=204, responses={404: {"description": "No such conversation"}})
def delete_session(session_id: SessionId, services: Annotated[Services, Depends(get_services)]) -> Response:
    services.sessions.delete(session_id)
    return Response(status_code=204)
