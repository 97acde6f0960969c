"""The UI's HTTP client: streamed answers from a real server, and every failure as a readable ApiError."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from backend.services import Services
from tests.backend.answering.test_watch import COMMANDER
from tests.conftest import QARATAPA_ID, QARATAPA_QUESTION, free_port
from tests.follow.servers import RSS, Item, Site, rss
from tests.ui.conftest import wait_for
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


# Long enough for the poller's text extraction to take it for an article.
STORY = (
    "The harbour authority said on Tuesday that work on berth 1 would finish before the summer, after inspectors"
    " found the old quay wall sound enough to keep.",
    "Engineers told reporters that the project had cost less than planned, since the cranes were rented from a"
    " neighbouring port for the months the work needed them.",
)


@pytest.mark.integration
def test_saved_questions_are_made_listed_answered_read_and_deleted(live_api: tuple[str, Services]) -> None:
    url, _ = live_api
    api = BylineClient(url)
    watch = api.create_watch(QARATAPA_QUESTION)
    assert watch["question"] == QARATAPA_QUESTION and watch["unread"] == 0 and watch["webhook_secret"] is None
    narrow = api.create_watch(
        QARATAPA_QUESTION, filters=Filters(sources=("Harbor Post",), published_after=date(2024, 1, 1))
    )
    assert narrow["filters"] == {"sources": ["Harbor Post"], "published_after": "2024-01-01", "published_before": None}
    with pytest.raises(ApiError, match=r"refused the request \(422\): .*private") as refused:
        api.create_watch("Anything?", webhook_url="http://10.1.2.3/hook")
    assert refused.value.status == 422
    assert [w["id"] for w in api.watches()["watches"]] == [narrow["id"], watch["id"]]

    api.add_articles([COMMANDER])
    wait_for("the event", lambda: api.watches()["unread"] == 1)
    [event] = api.watch_events(watch["id"], unread=True)
    assert event["article"]["id"] == COMMANDER["id"] and not event["read"]
    assert "Aram Dizayi" in event["answer"]["short_answer"]["text"]
    api.mark_read(watch["id"])
    assert api.watch_events(watch["id"], unread=True) == [] and api.watches()["unread"] == 0
    assert api.watch_events(watch["id"])[0]["read"] is True

    api.delete_watch(watch["id"])
    assert [w["id"] for w in api.watches()["watches"]] == [narrow["id"]]
    with pytest.raises(ApiError, match="Not found") as missing:
        api.watch_events(watch["id"])
    assert missing.value.status == 404


@pytest.mark.integration
def test_sources_are_followed_with_their_health_and_refusals_read_as_the_api_says(
    live_api: tuple[str, Services],
) -> None:
    url, _ = live_api
    api = BylineClient(url)
    with Site() as site:
        items = [Item("Berth 1 works", site.url("/news/1"), "g1", content="".join(f"<p>{p}</p>" for p in STORY))]
        site.route("/feed.xml", rss(items), content_type=RSS)
        added = api.follow(site.url("/feed.xml"), title="Harbor Post", interval_s=600)
        assert added["title"] == "Harbor Post" and added["interval_s"] == 600 and added["health"]["status"] == "pending"
        wait_for("the first poll", lambda: api.feeds()[0]["health"]["status"] != "pending")
        [feed] = api.feeds()
        assert feed["kind"] == "rss" and feed["health"]["status"] == "ok" and feed["health"]["new_articles"] == 1
        with pytest.raises(ApiError, match="followed already"):
            api.follow(site.url("/feed.xml"))
    with pytest.raises(ApiError, match=r"\(422\): .*private"):
        api.follow("http://10.1.2.3/feed.xml")
    api.unfollow(feed["id"])
    assert api.feeds() == []
    with pytest.raises(ApiError, match="Not found"):
        api.unfollow(feed["id"])
