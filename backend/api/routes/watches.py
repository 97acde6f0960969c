"""Saved questions: each is checked against every new article, and an article that answers it records an
event (``backend.answering.watch``). Scoped to the API key like conversations: another key's watch is 404."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from backend.api.auth import Owner
from backend.api.deps import get_services
from backend.api.schemas import EventList, EventOut, WatchIn, WatchList, WatchOut
from backend.core.net import check_url
from backend.services import Services

router = APIRouter(tags=["watches"])

WatchId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
_MISSING: dict[int | str, dict[str, Any]] = {404: {"description": "No such saved question for this key"}}


@router.post(
    "/watches",
    status_code=201,
    responses={422: {"description": "A webhook URL Byline will not post to, or too many saved questions"}},
)
def create_watch(body: WatchIn, services: Annotated[Services, Depends(get_services)], owner: Owner) -> WatchOut:
    """Save a question. With ``webhook_url``, the response carries ``webhook_secret``, shown this once: every
    event posted there is signed with it."""
    settings = services.settings
    if body.webhook_url is not None:  # the SSRF rule; checked again before every delivery
        check_url(body.webhook_url, settings.follow.networks())
    watch = services.watches.create(
        owner,
        body.question.strip() or body.question,
        body.filters.to_core() if body.filters else None,
        body.webhook_url,
        max_per_owner=settings.watches.max_per_owner,
    )
    return WatchOut.from_core(watch)


@router.get("/watches")
def list_watches(services: Annotated[Services, Depends(get_services)], owner: Owner) -> WatchList:
    """The caller's saved questions, newest first, each with its unread events."""
    watches = services.watches.owned(owner)
    shown = [WatchOut.from_core(replace(w, webhook_secret=None)) for w in watches]
    return WatchList(watches=shown, unread=sum(w.unread for w in watches))


@router.delete("/watches/{watch_id}", status_code=204, responses=_MISSING)
def delete_watch(watch_id: WatchId, services: Annotated[Services, Depends(get_services)], owner: Owner) -> Response:
    """The saved question, its events and the deliveries they still owed."""
    services.watches.delete(watch_id, owner)
    return Response(status_code=204)


@router.get("/watches/{watch_id}/events", responses=_MISSING)
def list_events(
    watch_id: WatchId,
    services: Annotated[Services, Depends(get_services)],
    owner: Owner,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    unread: Annotated[bool, Query(description="Only the events not yet marked read.")] = False,
) -> EventList:
    """The articles that answered the saved question, newest first, each with the answer it gave."""
    found = services.watches.events(watch_id, owner, limit=limit, offset=offset, unread_only=unread)
    min_confidence = services.settings.answer.min_confidence
    return EventList(events=[EventOut.from_core(e, min_confidence) for e in found])


@router.post("/watches/{watch_id}/read", status_code=204, responses=_MISSING)
def mark_read(watch_id: WatchId, services: Annotated[Services, Depends(get_services)], owner: Owner) -> Response:
    """Every event of the saved question marked read (the badge counts the others)."""
    services.watches.mark_read(watch_id, owner)
    return Response(status_code=204)
