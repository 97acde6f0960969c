"""OpenAI-compatible chat: any OpenAI client or chat front end can talk to the archive.

The client keeps the conversation (``messages``); the last user message is the question and the
earlier user/assistant pairs are its history, so follow-ups work as in ``/ask`` and nothing is
stored server-side. Citations are ``[n]`` markers in the text, a "Sources:" list at the end of the
message, and structured in ``citations`` for clients that read it (with ``short_answer``, as ``/ask``
gives it).

A stream sends the answer after its citations are verified, sentence by sentence: an OpenAI
stream cannot take text back, and an unverified draft may cite what does not support it.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, model_validator

from backend.api.deps import get_services
from backend.api.schemas import CitationOut, FiltersIn, IsoDate, ShortAnswerOut
from backend.core.dates import today_utc
from backend.core.errors import InvalidRequest, NotFound
from backend.core.types import Answer, Citation, Turn
from backend.services import Services

router = APIRouter(prefix="/v1", tags=["openai-compatible"])

MODEL = "byline"
_SOURCES_HEADING = "\n\nSources:\n"
# Pieces of a stream end after a sentence; the whitespace goes with the next, so they join exactly.
_SENTENCE_END = re.compile(r"(?<=[.!?\n])(?=\s)")
# Tokens are not counted: the extractive answerer has none, and the archive is not billed by them.
_NO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
log = logging.getLogger("byline.api")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_call_id and the like are ignored

    role: Literal["system", "developer", "user", "assistant", "tool"]
    # A string, or content parts of which the text ones are read.
    content: str | list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _unicode(self) -> ChatMessage:
        # pydantic passes a str through a union untouched, lone surrogates ("\ud800") included, and the
        # tokenizer fails on them later: refused here, as /ask refuses them.
        try:
            self.text().encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("the message is not valid Unicode (it holds a lone surrogate)") from exc
        return self

    def text(self) -> str:
        if isinstance(self.content, list):
            return " ".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """The OpenAI fields clients send are accepted; sampling settings do not apply to the archive.
    ``as_of`` and ``filters`` are Byline's own (``extra_body`` in the openai client)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(max_length=200)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: StrictBool = False
    stream_options: dict[str, Any] | None = None
    temperature: StrictFloat | StrictInt | None = Field(default=None, ge=0, le=2)
    top_p: StrictFloat | StrictInt | None = Field(default=None, ge=0, le=1)
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    n: StrictInt | None = Field(default=None, ge=1, le=1)
    stop: str | list[str] | None = None
    presence_penalty: StrictFloat | StrictInt | None = None
    frequency_penalty: StrictFloat | StrictInt | None = None
    seed: StrictInt | None = None
    user: str | None = Field(default=None, max_length=200)
    as_of: IsoDate | None = None
    filters: FiltersIn | None = None


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


_CREATED = int(time.time())


@router.get("/models")
def models() -> ModelList:
    """The one model: the archive, answered with citations."""
    return ModelList(data=[ModelOut(id=MODEL, created=_CREATED, owned_by="byline")])


def _conversation(body: ChatCompletionRequest, max_messages: int) -> tuple[str, list[Turn]]:
    if len(body.messages) > max_messages:
        raise InvalidRequest(f"at most {max_messages} messages per request; this one has {len(body.messages)}")
    talk = [m for m in body.messages if m.role in ("user", "assistant")]
    if not talk or talk[-1].role != "user" or not talk[-1].text().strip():
        raise InvalidRequest("the last message must be the user's question")
    question = talk[-1].text().strip()
    if len(question) > 2000:
        raise InvalidRequest("the question is longer than 2000 characters")
    history: list[Turn] = []
    pending: str | None = None
    for message in talk[:-1]:
        if message.role == "user":
            pending = message.text()
        elif pending is not None:
            answer = message.text().split(_SOURCES_HEADING, 1)[0]  # our own sources list is not conversation
            history.append(Turn(question=pending, rewritten_query=pending, answer=answer))
            pending = None
    return question, history


def _sources_list(citations: tuple[Citation, ...]) -> str:
    if not citations:
        return ""
    lines = []
    for c in citations:
        when = c.published_at.date().isoformat() if c.published_at else "undated"
        lines.append(f"[{c.n}] {c.title} ({c.source or 'unknown outlet'}, {when}) {c.url or ''}".rstrip())
    return _SOURCES_HEADING + "\n".join(lines)


def _extra(answer: Answer, min_confidence: float) -> dict[str, Any]:
    short = answer.short_answer
    return {
        "citations": [CitationOut.from_core(c).model_dump(mode="json") for c in answer.citations],
        "rewritten_query": answer.rewritten_query,
        "degraded": answer.degraded is not None,
        "short_answer": ShortAnswerOut.from_core(short, min_confidence).model_dump(mode="json") if short else None,
    }


def _ask(body: ChatCompletionRequest, services: Services) -> tuple[str, dict[str, Any]]:
    if body.model != MODEL:
        raise NotFound(f"no model {body.model!r}; this server has {MODEL!r} (GET /v1/models)")
    question, history = _conversation(body, services.settings.api.max_messages)
    args = {
        "as_of": body.as_of or today_utc(),
        "filters": body.filters.to_core() if body.filters else None,
        "history": history,
    }
    return question, args


@router.post("/chat/completions", responses={200: {"content": {"text/event-stream": {}}}})
def chat_completions(body: ChatCompletionRequest, services: Annotated[Services, Depends(get_services)]) -> Any:
    """An answer from the archive in the OpenAI chat completion format, streamed when ``stream`` is set."""
    question, args = _ask(body, services)
    min_confidence = services.settings.answer.min_confidence
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if not body.stream:
        answer = services.answers.ask(question, **args)
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer.text + _sources_list(answer.citations)},
                    "finish_reason": "stop",
                }
            ],
            "usage": _NO_USAGE,
            **_extra(answer, min_confidence),
        }

    events = services.answers.stream(question, **args)
    first = next(events)  # reading and retrieval run now, so their errors still leave as problem+json
    include_usage = bool((body.stream_options or {}).get("include_usage"))
    head = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL}

    def data(payload: dict[str, Any]) -> str:
        return f"data: {json.dumps({**head, **payload}, default=str)}\n\n"

    def choice(delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
        return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def sse() -> Iterator[str]:
        yield data(choice({"role": "assistant", "content": ""}))
        try:
            answer = next(e for e in itertools.chain([first], events) if isinstance(e, Answer))
        except Exception:  # the status line is gone; say so in the stream, log the rest
            log.exception("error while streaming a chat completion")
            yield data({"error": {"message": "The answer could not be finished.", "type": "server_error"}})
            return
        for piece in _SENTENCE_END.split(answer.text + _sources_list(answer.citations)):
            if piece:
                yield data(choice({"content": piece}))
        yield data({**choice({}, "stop"), **_extra(answer, min_confidence)})
        if include_usage:
            yield data({"choices": [], "usage": _NO_USAGE})
        yield "data: [DONE]\n\n"

    return StreamingResponse(sse(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
