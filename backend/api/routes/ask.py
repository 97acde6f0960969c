from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from backend.answering.chain import Started
from backend.api.auth import Owner
from backend.api.deps import get_services
from backend.api.schemas import AskRequest, AskResponse, ReadingOut, SourceOut, StreamStart
from backend.core.dates import today_utc
from backend.core.types import Answer
from backend.services import Services

log = logging.getLogger("byline.api")

router = APIRouter(tags=["questions"])


def _ask_args(body: AskRequest, as_of: date, owner: str) -> dict[str, Any]:
    filters = body.filters.to_core() if body.filters else None
    return {"session_id": body.session_id, "as_of": as_of, "filters": filters, "k": body.k, "owner": owner}


_NOT_YOURS: dict[int | str, dict[str, Any]] = {
    404: {"description": "session_id names a conversation of another API key"}
}


@router.post("/ask", responses=_NOT_YOURS)
def ask(body: AskRequest, services: Annotated[Services, Depends(get_services)], owner: Owner) -> AskResponse:
    """An answer with numbered citations; pass the returned ``session_id`` back for follow-ups (with the
    same API key: another key's conversation is 404)."""
    as_of = body.as_of or today_utc()
    answer = services.answers.ask(body.question, **_ask_args(body, as_of, owner))
    return AskResponse.from_core(answer, as_of, services.settings.answer.min_confidence)


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data, default=str)}\n\n"


@router.post(
    "/ask/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **_NOT_YOURS},
)
def ask_stream(
    body: AskRequest, services: Annotated[Services, Depends(get_services)], owner: Owner
) -> StreamingResponse:
    """Server-sent events: ``start`` (rewritten query, reading, sources), ``token`` (answer text as it
    is written), then ``answer`` (the verified answer, as ``POST /ask`` returns it; its text replaces
    the tokens). A failure after the stream began arrives as an ``error`` event."""
    as_of = body.as_of or today_utc()
    min_confidence = services.settings.answer.min_confidence
    events = services.answers.stream(body.question, **_ask_args(body, as_of, owner))
    # Reading and retrieval run before the response starts, so their errors are ordinary problem+json.
    first = next(events)

    def sse() -> Iterator[str]:
        try:
            for event in itertools.chain([first], events):
                if isinstance(event, Started):
                    start = StreamStart(
                        session_id=event.session_id,
                        rewritten_query=event.rewritten_query,
                        as_of=as_of,
                        reading=ReadingOut.from_core(event.reading),
                        sources=[SourceOut.from_core(s) for s in event.sources],
                    )
                    yield _event("start", start.model_dump(mode="json"))
                elif isinstance(event, Answer):
                    answer = AskResponse.from_core(event, as_of, min_confidence)
                    yield _event("answer", answer.model_dump(mode="json"))
                else:
                    yield _event("token", {"text": event})
        except Exception:  # the status line is gone; tell the client in the stream, log the rest
            log.exception("error while streaming an answer")
            yield _event("error", {"title": "Internal error", "detail": "The answer could not be finished."})

    return StreamingResponse(sse(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
