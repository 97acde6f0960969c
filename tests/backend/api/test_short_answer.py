"""``short_answer`` on every route that answers: /ask, its stream's final event and the OpenAI-compatible
chat, through a real uvicorn server over the demo archive, with a generator that gives one on demand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import httpx
import openai
import pytest

from backend.services import Services
from backend.settings import AnswerSettings
from tests.backend.api.short_answers import OUTLETS, ShortAnswerer, answering_with
from tests.conftest import QARATAPA_QUESTION, ServerThread

pytestmark = pytest.mark.integration


@contextmanager
def _served(services: Services, generator: ShortAnswerer, min_confidence: float | None = None) -> Iterator[str]:
    if min_confidence is not None:
        answer = AnswerSettings(min_confidence=min_confidence)
        services = replace(services, settings=services.settings.model_copy(update={"answer": answer}))
    with ServerThread(answering_with(services, generator)) as server:
        yield server.url


def _ask(url: str, question: str = QARATAPA_QUESTION, **body: object) -> dict[str, Any]:
    response = httpx.post(f"{url}/ask", json={"question": question, **body}, timeout=60)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in response.text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_the_short_answer_is_numbered_as_its_verified_citation(demo_services: Services) -> None:
    generator = ShortAnswerer(cite=3)
    with _served(demo_services, generator) as url:
        body = _ask(url)
    assert body["short_answer"] == {
        "text": "Nordstrom",
        "n": 2,  # source 3 of the draft, the second source the answer cites
        "confidence": 0.8,
        "outlets": list(OUTLETS),
        "sure": True,
    }
    assert body["answer"].endswith("The answer is Nordstrom [2].")
    cited = {c["n"]: c["article_id"] for c in body["citations"]}
    assert cited == {1: generator.seen[0][0].article_id, 2: generator.seen[0][2].article_id}


def test_below_the_threshold_a_short_answer_is_not_sure(demo_services: Services) -> None:
    with _served(demo_services, ShortAnswerer(confidence=0.1)) as url:
        unsure = _ask(url)["short_answer"]
    assert (unsure["text"], unsure["confidence"], unsure["sure"]) == ("Nordstrom", 0.1, False)
    # The threshold is the server's setting, and reaching it is sure.
    with _served(demo_services, ShortAnswerer(confidence=0.8), min_confidence=0.9) as url:
        assert _ask(url)["short_answer"]["sure"] is False
    with _served(demo_services, ShortAnswerer(confidence=0.9), min_confidence=0.9) as url:
        assert _ask(url)["short_answer"]["sure"] is True


def test_a_short_answer_without_its_source_is_null(demo_services: Services) -> None:
    # Nothing published by then: no source says the short answer, so it goes with the citations.
    with _served(demo_services, ShortAnswerer()) as url:
        body = _ask(url, as_of="1990-01-01")
    assert body["citations"] == [] and body["short_answer"] is None
    assert body["answer"].startswith("The archive has no article")


def test_the_stream_ends_with_the_short_answer_as_ask_gives_it(demo_services: Services) -> None:
    with _served(demo_services, ShortAnswerer(confidence=0.1)) as url:
        response = httpx.post(f"{url}/ask/stream", json={"question": QARATAPA_QUESTION}, timeout=60)
        asked = _ask(url)
    assert response.status_code == 200
    events = _events(response)
    name, final = events[-1]
    assert name == "answer" and final["short_answer"] == asked["short_answer"]
    assert final["short_answer"] == {
        "text": "Nordstrom", "n": 2, "confidence": 0.1, "outlets": list(OUTLETS), "sure": False
    }  # fmt: skip
    assert final["citations"][1]["n"] == 2
    assert all("short_answer" not in data for name, data in events[:-1])  # only the verified answer has one


def test_the_openai_route_carries_the_short_answer_next_to_degraded(demo_services: Services) -> None:
    expected = {"text": "Nordstrom", "n": 2, "confidence": 0.8, "outlets": list(OUTLETS), "sure": True}
    question = [{"role": "user", "content": QARATAPA_QUESTION}]
    with _served(demo_services, ShortAnswerer()) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-byline")
        completion = client.chat.completions.create(model="byline", messages=question)
        extra = completion.model_extra or {}
        assert extra["short_answer"] == expected and extra["degraded"] is False
        assert "Nordstrom [2]" in (completion.choices[0].message.content or "")

        chunks = list(client.chat.completions.create(model="byline", messages=question, stream=True))
        last = chunks[-1]
        assert last.choices[0].finish_reason == "stop"
        assert (last.model_extra or {})["short_answer"] == expected
        assert all("short_answer" not in (c.model_extra or {}) for c in chunks[:-1])

        nothing = client.chat.completions.create(model="byline", messages=question, extra_body={"as_of": "1990-01-01"})
        assert (nothing.model_extra or {})["short_answer"] is None


def test_the_schema_documents_the_short_answer(demo_services: Services) -> None:
    with _served(demo_services, ShortAnswerer()) as url:
        schema = httpx.get(f"{url}/openapi.json", timeout=30).json()
    short = schema["components"]["schemas"]["ShortAnswerOut"]
    assert set(short["required"]) == {"text", "n", "confidence", "outlets", "sure"}
    assert all(field.get("description") for field in short["properties"].values())
    assert (short["properties"]["confidence"]["minimum"], short["properties"]["confidence"]["maximum"]) == (0, 1)
    field = schema["components"]["schemas"]["AskResponse"]["properties"]["short_answer"]
    assert {"$ref": "#/components/schemas/ShortAnswerOut"} in field["anyOf"] and {"type": "null"} in field["anyOf"]
    assert "short_answer" not in schema["components"]["schemas"]["AskResponse"].get("required", [])
