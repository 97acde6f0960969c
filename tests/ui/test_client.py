"""The UI's HTTP client: streamed answers from a real server, and every failure as a readable ApiError."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from tests.conftest import QARATAPA_ID, QARATAPA_QUESTION, free_port
from ui.client import ApiError, BylineClient, Event, Filters, _server_sent_events, problem_message


@pytest.mark.integration
def test_a_streamed_answer_arrives_as_start_tokens_then_the_answer(ui_api: str) -> None:
    events = list(BylineClient(ui_api).ask_stream(QARATAPA_QUESTION))
    names = [e.name for e in events]
    assert names[0] == "start" and names[-1] == "answer" and set(names[1:-1]) == {"token"}
    assert QARATAPA_ID in {s["article_id"] for s in events[0].data["sources"]}
    streamed = "".join(e.data["text"] for e in events[1:-1])
    final = events[-1].data
    assert "Mardan Salih" in streamed and "Mardan Salih" in final["answer"]
    assert final["citations"][0]["article_id"] == QARATAPA_ID and final["session_id"] == events[0].data["session_id"]


@pytest.mark.integration
def test_filters_and_as_of_are_sent_as_the_api_reads_them(ui_api: str) -> None:
    api = BylineClient(ui_api)
    reply = api.ask(
        "Peshmerga and Iraqi army cooperation",
        filters=Filters(sources=("Tigris Ledger",)),
        as_of=date(2023, 12, 31),
    )
    assert reply["as_of"] == "2023-12-31"
    assert reply["citations"] and {c["source"] for c in reply["citations"]} == {"Tigris Ledger"}
    assert Filters().to_json() is None


def test_server_sent_events_are_parsed_as_the_format_says() -> None:
    lines = [": a comment", "event: start", 'data: {"a": 1}', "", 'data: {"b":', "data: 2}", "", "event: answer"]
    lines.append('data: {"answer": "x"}')  # the last event has no blank line after it
    assert list(_server_sent_events(iter(lines))) == [
        Event("start", {"a": 1}),
        Event("message", {"b": 2}),
        Event("answer", {"answer": "x"}),
    ]
    with pytest.raises(ApiError, match="unreadable event"):
        list(_server_sent_events(iter(["event: token", "data: {not json", ""])))


def _problem(status: int, detail: str, **headers: str) -> httpx.Response:
    body = {"type": "about:blank", "title": "t", "status": status, "detail": detail}
    return httpx.Response(status, json=body, headers=headers)


def test_error_responses_read_as_advice() -> None:
    assert problem_message(_problem(401, "the API key is not valid")) == (
        "The server needs a valid API key (the API key is not valid). "
        "Set BYLINE_API_KEY or enter the key in the sidebar."
    )
    assert problem_message(_problem(429, "slow down", **{"Retry-After": "7"})) == (
        "Too many requests: the server asks to try again in 7 seconds."
    )
    assert "try again in a moment" in problem_message(_problem(429, "slow down"))
    assert problem_message(_problem(503, "embedding model not loaded", **{"Retry-After": "5"})) == (
        "The Byline server is unavailable (embedding model not loaded). Try again in 5 seconds."
    )
    assert problem_message(_problem(403, "this key may read but not write")).startswith("This API key is not allowed")
    assert problem_message(httpx.Response(502, text="<html>bad gateway</html>")) == (
        "The server refused the request (502): Bad Gateway"
    )


def test_an_unreachable_server_is_an_api_error_not_a_traceback() -> None:
    api = BylineClient(f"http://127.0.0.1:{free_port()}", timeout=5)
    with pytest.raises(ApiError, match="Cannot reach the Byline server"):
        api.archive()
    with pytest.raises(ApiError, match="Cannot reach the Byline server"):
        list(api.ask_stream("anything"))
    with pytest.raises(ApiError, match="not a usable API address"):
        BylineClient("127.0.0.1:8000").sessions()


@pytest.mark.integration
def test_ids_with_slashes_stay_inside_the_article_route(ui_api: str) -> None:
    with pytest.raises(ApiError, match="Not found") as raised:
        BylineClient(ui_api).article("../sessions?x=1")
    assert raised.value.status == 404
