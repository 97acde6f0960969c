from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from backend.api.auth import Owner
from backend.api.deps import get_services
from backend.api.schemas import SessionList, SessionOut, SessionSummaryOut, TurnOut
from backend.services import Services

router = APIRouter(tags=["sessions"])

SessionId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


@router.get("/sessions")
def list_sessions(
    services: Annotated[Services, Depends(get_services)],
    owner: Owner,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> SessionList:
    """The caller's conversations (those its API key started), most recently active first; older than
    the configured age are deleted."""
    found = services.sessions.summaries(limit, offset, owner)
    return SessionList(sessions=[SessionSummaryOut.from_core(s) for s in found])


@router.get("/sessions/{session_id}", responses={404: {"description": "No such conversation"}})
def get_session(
    session_id: SessionId, services: Annotated[Services, Depends(get_services)], owner: Owner
) -> SessionOut:
    """Every turn of a conversation with its citations."""
    turns = services.sessions.turns(session_id, owner)
    return SessionOut(id=session_id, turns=[TurnOut.from_core(t) for t in turns])


@router.delete("/sessions/{session_id}", status_code=204, responses={404: {"description": "No such conversation"}})
def delete_session(
    session_id: SessionId, services: Annotated[Services, Depends(get_services)], owner: Owner
) -> Response:
    services.sessions.delete(session_id, owner)
    return Response(status_code=204)
