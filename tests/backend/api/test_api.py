"""The HTTP contract, through a real uvicorn server on a free loopback port."""

import json
import os
import subprocess
import sys
from datetime import date

import httpx
import pytest
from pydantic import SecretStr

from backend.services import Services, build_services
from backend.settings import LLMSettings
from tests.conftest import QARATAPA_ID, QARATAPA_QUESTION, ServerThread, free_port

pytestmark = pytest.mark.integration


def _post(api_url: str, path: str, body: object) -> httpx.Response:
    return httpx.post(f"{api_url}{path}", json=body, timeout=30)


def test_health_reports_the_archive(api_url: str) -> None:
    response = httpx.get(f"{api_url}/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["chunks"] > 20


def test_search_ranks_the_qaratapa_article_first(api_url: str) -> None:
    response = _post(api_url, "/search", {"query": QARATAPA_QUESTION, "k": 5})
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["article_id"] == QARATAPA_ID
    assert results[0]["source"] == "Northern Dispatch"
    assert results[0]["published_at"].startswith("2023-10-04")
    assert set(results[0]) == {
        "chunk_id", "article_id", "url", "title", "source", "published_at", "text", "score", "also_in"
    }  # fmt: skip
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True) and len(results) == 5


def test_ask_answers_mardan_salih_citing_the_article(api_url: str) -> None:
    response = _post(api_url, "/ask", {"question": QARATAPA_QUESTION})
    assert response.status_code == 200
    body = response.json()
    assert "Mardan Salih" in body["answer"]
    assert body["citations"][0]["article_id"] == QARATAPA_ID
    markers = {int(n) for n in __import__("re").findall(r"\[(\d+)\]", body["answer"])}
    assert markers == {c["n"] for c in body["citations"]}
    assert body["session_id"] and body["rewritten_query"] == QARATAPA_QUESTION
    assert (body["degraded"], body["degraded_reason"]) == (False, None)  # extractive: nothing to degrade from
    short = body["short_answer"]  # present on every answer: null, or numbered as one of its citations
    assert short is None or (short["n"] in markers and short["sure"] == (short["confidence"] >= 0.3))


def test_as_of_before_the_article_excludes_it(api_url: str) -> None:
    day_before = {"as_of": "2023-10-03"}
    search = _post(api_url, "/search", {"query": QARATAPA_QUESTION, **day_before}).json()["results"]
    assert search and QARATAPA_ID not in {r["article_id"] for r in search}
    assert all(r["published_at"] is None or r["published_at"][:10] <= "2023-10-03" for r in search)
    ask = _post(api_url, "/ask", {"question": QARATAPA_QUESTION, **day_before}).json()
    assert "Mardan Salih" not in ask["answer"]
    assert QARATAPA_ID not in {c["article_id"] for c in ask["citations"]}
    same_day = _post(api_url, "/search", {"query": QARATAPA_QUESTION, "as_of": "2023-10-04"}).json()["results"]
    assert same_day[0]["article_id"] == QARATAPA_ID


def test_follow_up_in_the_same_session(api_url: str) -> None:
    first = _post(api_url, "/ask", {"question": QARATAPA_QUESTION}).json()
    follow = _post(api_url, "/ask", {"question": "What did he say about security?", "session_id": first["session_id"]})
    body = follow.json()
    assert body["session_id"] == first["session_id"]
    assert "Qaratapa-Hamrin" in body["rewritten_query"]
    assert "99 percent" in body["answer"]


def test_filters_restrict_sources_and_dates(api_url: str) -> None:
    body = {
        "query": "security cooperation",
        "filters": {"sources": ["tigris ledger"], "published_before": "2023-12-31"},
    }
    results = _post(api_url, "/search", body).json()["results"]
    assert results and {r["source"] for r in results} == {"Tigris Ledger"}
    assert all(date.fromisoformat(r["published_at"][:10]) <= date(2023, 12, 31) for r in results)


def test_a_time_windowed_question_is_read_and_answered_from_its_window(api_url: str) -> None:
    # Two central bank decisions: a rise on 2024-01-25 and a hold on 2024-03-21.
    body = {"query": "What did the central bank decide last month?", "as_of": "2024-02-15", "k": 5}
    response = _post(api_url, "/search", body).json()
    assert response["reading"]["window"] == {"start": "2024-01-01", "end": "2024-01-31", "phrase": "last month"}
    results = response["results"]
    assert results[0]["article_id"] == "demo-007" and results[0]["published_at"].startswith("2024-01")
    assert all(r["published_at"][:10] <= "2024-02-15" for r in results)  # nothing after as_of
    ask = _post(api_url, "/ask", {"question": "What did the central bank decide in March?", "as_of": "2024-04-30"})
    answer = ask.json()
    assert answer["reading"]["window"]["start"] == "2024-03-01"
    assert answer["citations"] and answer["citations"][0]["article_id"] == "demo-008"
    assert "holds" in answer["citations"][0]["title"]


def test_an_outlet_named_in_the_question_filters_the_sources(api_url: str) -> None:
    body = {"query": "What did the Harbor Post report about air strikes in the Hamrin mountains?", "k": 5}
    response = _post(api_url, "/search", body).json()
    assert response["reading"]["sources"] == ["Harbor Post"]
    assert response["results"] and {r["source"] for r in response["results"]} == {"Harbor Post"}
    ask = _post(api_url, "/ask", {"question": "According to the Tigris Ledger, what opened in Kirkuk?"}).json()
    assert ask["reading"]["sources"] == ["Tigris Ledger"]
    assert ask["citations"] and {c["source"] for c in ask["citations"]} == {"Tigris Ledger"}


def test_wire_copies_collapse_into_one_result_naming_the_other_outlet(api_url: str) -> None:
    results = _post(api_url, "/search", {"query": "air strikes on militants in the Hamrin mountains"}).json()["results"]
    strikes = [r for r in results if r["article_id"] in ("demo-005", "demo-006")]
    assert len(strikes) == 1
    other = {"demo-005": "Harbor Post", "demo-006": "Meridian Wire"}[strikes[0]["article_id"]]
    assert strikes[0]["also_in"] == [other]
    assert len({r["article_id"] for r in results}) == len(results)  # one passage per article


def test_an_answer_from_a_wire_story_names_the_other_outlets_in_its_citation(api_url: str) -> None:
    question = {"question": "What did the Iraqi jets strike in the Hamrin mountains?"}
    answer = _post(api_url, "/ask", question).json()
    strikes = [c for c in answer["citations"] if c["article_id"] in ("demo-005", "demo-006")]
    assert strikes and strikes[0]["also_in"] in (["Harbor Post"], ["Meridian Wire"])
    turns = httpx.get(f"{api_url}/sessions/{answer['session_id']}", timeout=30).json()["turns"]
    assert turns[0]["citations"] == answer["citations"]  # kept with the conversation
    with httpx.stream("POST", f"{api_url}/ask/stream", json=question, timeout=60) as response:
        start = next(line for line in response.iter_lines() if line.startswith("data:"))
    sources = json.loads(start.removeprefix("data: "))["sources"]
    assert any(s["also_in"] for s in sources if s["article_id"] in ("demo-005", "demo-006"))


def test_a_follow_up_retrieves_the_article_of_the_first_answer(api_url: str) -> None:
    first = _post(api_url, "/ask", {"question": QARATAPA_QUESTION}).json()
    follow = _post(api_url, "/ask", {"question": "What did he say about security?", "session_id": first["session_id"]})
    body = follow.json()
    assert body["rewritten_query"] != "What did he say about security?"
    assert body["citations"][0]["article_id"] == QARATAPA_ID


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/search", {"query": ""}, "query"),
        ("/search", {"query": "x", "k": 0}, "k"),
        ("/search", {"query": "x", "k": 10_000}, "k"),
        ("/search", {"query": "x", "as_of": "yesterday-ish"}, "as_of"),
        ("/search", {"query": "x", "colour": "red"}, "colour"),
        ("/ask", {}, "question"),
        ("/ask", {"question": "x", "session_id": "../etc"}, "session_id"),
        (
            "/ask",
            {"question": "x", "filters": {"published_after": "2024-01-02", "published_before": "2024-01-01"}},
            "published_after",
        ),
    ],
)
def test_invalid_requests_get_a_readable_4xx_problem(api_url: str, path: str, body: object, needle: str) -> None:
    response = _post(api_url, path, body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422 and needle in problem["detail"]
    assert "Traceback" not in response.text


def test_malformed_json_body_is_a_4xx_not_a_traceback(api_url: str) -> None:
    response = httpx.post(f"{api_url}/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422 and "Traceback" not in response.text


def _sse(response: httpx.Response) -> list[tuple[str, dict[str, object]]]:
    events = []
    for block in response.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_ask_stream_sends_reading_and_sources_then_text_then_the_verified_answer(api_url: str) -> None:
    response = _post(api_url, "/ask/stream", {"question": QARATAPA_QUESTION})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = _sse(response)
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "answer" and "token" in names
    start, answer = events[0][1], events[-1][1]
    assert start["rewritten_query"] == QARATAPA_QUESTION and start["sources"]
    assert {"n", "article_id", "title", "source", "published_at", "url"} <= set(start["sources"][0])  # type: ignore[index]
    streamed = "".join(str(data["text"]) for name, data in events if name == "token")
    assert "Mardan Salih" in streamed and "Mardan Salih" in str(answer["answer"])
    assert answer["session_id"] == start["session_id"]
    assert answer["citations"][0]["article_id"] == QARATAPA_ID  # type: ignore[index]
    assert answer["short_answer"] == _post(api_url, "/ask", {"question": QARATAPA_QUESTION}).json()["short_answer"]
    follow = _post(api_url, "/ask", {"question": "What did he say about security?", "session_id": start["session_id"]})
    assert "Mardan Salih" in follow.json()["rewritten_query"]  # the streamed turn is in the session


def test_ask_stream_rejects_bad_input_before_streaming(api_url: str) -> None:
    response = _post(api_url, "/ask/stream", {"question": ""})
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"


def test_sessions_are_listed_read_and_deleted_over_http(api_url: str) -> None:
    session = _post(api_url, "/ask", {"question": QARATAPA_QUESTION}).json()["session_id"]
    listed = httpx.get(f"{api_url}/sessions", params={"limit": 200}, timeout=30).json()["sessions"]
    mine = next(s for s in listed if s["id"] == session)
    assert mine["turns"] == 1 and mine["first_question"] == QARATAPA_QUESTION
    turns = httpx.get(f"{api_url}/sessions/{session}", timeout=30).json()["turns"]
    assert turns[0]["question"] == QARATAPA_QUESTION and turns[0]["citations"][0]["article_id"] == QARATAPA_ID
    assert httpx.delete(f"{api_url}/sessions/{session}", timeout=30).status_code == 204
    gone = httpx.get(f"{api_url}/sessions/{session}", timeout=30)
    assert gone.status_code == 404 and gone.headers["content-type"] == "application/problem+json"
    assert session in gone.json()["detail"]
    assert httpx.delete(f"{api_url}/sessions/{session}", timeout=30).status_code == 404
    assert httpx.get(f"{api_url}/sessions/..%2Fetc", timeout=30).status_code in (404, 422)


def test_a_conversation_survives_a_server_restart(demo_services: Services) -> None:
    with ServerThread(demo_services) as first:
        session = _post(first.url, "/ask", {"question": QARATAPA_QUESTION}).json()["session_id"]
    restarted = build_services(demo_services.settings, demo_services.embedder)  # a new process's objects
    with ServerThread(restarted) as second:
        assert httpx.get(f"{second.url}/sessions/{session}", timeout=30).json()["turns"][0]["question"] == (
            QARATAPA_QUESTION
        )
        follow = _post(second.url, "/ask", {"question": "What did he say about security?", "session_id": session})
        assert "Mardan Salih" in follow.json()["rewritten_query"]


def test_archive_describes_counts_dates_and_outlets(api_url: str) -> None:
    body = httpx.get(f"{api_url}/archive", timeout=30).json()
    assert body["articles"] == 24 and body["chunks"] >= 24
    assert body["first_published"].startswith("2023-04-20") and body["last_published"].startswith("2024-04-14")
    outlets = {o["name"]: o["articles"] for o in body["outlets"]}
    assert sum(outlets.values()) == 24 and outlets["Northern Dispatch"] == 4
    assert body["last_ingest"] is not None


def test_a_citation_opens_as_the_full_article(api_url: str) -> None:
    citation = _post(api_url, "/ask", {"question": QARATAPA_QUESTION}).json()["citations"][0]
    article = httpx.get(f"{api_url}/articles/{citation['article_id']}", timeout=30).json()
    assert article["id"] == QARATAPA_ID and article["source"] == "Northern Dispatch"
    assert citation["snippet"] in article["text"] and article["text"].count("Mardan Salih, the Peshmerga") == 1
    missing = httpx.get(f"{api_url}/articles/no-such-article", timeout=30)
    assert missing.status_code == 404 and "no-such-article" in missing.json()["detail"]


def test_ready_reports_an_unreachable_llm_while_health_stays_up(demo_services: Services) -> None:
    with ServerThread(demo_services) as fine:
        ready = httpx.get(f"{fine.url}/ready", timeout=30)
        assert ready.status_code == 200 and ready.json()["checks"]["llm"] == "extractive"
    down = LLMSettings(provider="openai", model="m", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0)
    broken = build_services(demo_services.settings.model_copy(update={"llm": down}), demo_services.embedder)
    with ServerThread(broken) as server:
        ready = httpx.get(f"{server.url}/ready", timeout=30)
        assert ready.status_code == 503 and ready.headers["content-type"] == "application/problem+json"
        assert "openai server at http://127.0.0.1" in ready.json()["detail"]
        assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200


def test_with_api_keys_every_route_but_the_probes_needs_one(demo_services: Services) -> None:
    locked = build_services(
        demo_services.settings.model_copy(update={"api_keys": SecretStr("first-key, second-key")}),
        demo_services.embedder,
    )
    with ServerThread(locked) as server:
        url = server.url
        assert httpx.get(f"{url}/health", timeout=30).status_code == 200
        assert httpx.get(f"{url}/ready", timeout=30).status_code == 200
        for method, path, body in [
            ("POST", "/search", {"query": "Peshmerga"}),
            ("POST", "/ask", {"question": QARATAPA_QUESTION}),
            ("POST", "/ask/stream", {"question": QARATAPA_QUESTION}),
            ("GET", "/sessions", None),
            ("GET", "/archive", None),
            ("GET", f"/articles/{QARATAPA_ID}", None),
        ]:
            bare = httpx.request(method, f"{url}{path}", json=body, timeout=30)
            assert bare.status_code == 401 and bare.headers["content-type"] == "application/problem+json", path
            wrong = httpx.request(method, f"{url}{path}", json=body, headers={"X-API-Key": "first-ke"}, timeout=30)
            assert wrong.status_code == 401 and "not valid" in wrong.json()["detail"], path
            bearer = {"Authorization": "Bearer second-key"}
            assert httpx.request(method, f"{url}{path}", json=body, headers=bearer, timeout=30).status_code == 200
            header = {"X-API-Key": "first-key"}
            assert httpx.request(method, f"{url}{path}", json=body, headers=header, timeout=30).status_code == 200


def test_a_conversation_belongs_to_the_key_that_started_it(demo_services: Services) -> None:
    locked = build_services(
        demo_services.settings.model_copy(update={"api_keys": SecretStr("first-key, second-key")}),
        demo_services.embedder,
    )
    first, second = {"X-API-Key": "first-key"}, {"Authorization": "Bearer second-key"}
    with ServerThread(locked) as server:

        def call(method: str, path: str, key: dict[str, str], body: object = None) -> httpx.Response:
            return httpx.request(method, f"{server.url}{path}", json=body, headers=key, timeout=60)

        mine = call("POST", "/ask", first, {"question": QARATAPA_QUESTION}).json()["session_id"]
        assert mine in {s["id"] for s in call("GET", "/sessions?limit=200", first).json()["sessions"]}
        assert mine not in {s["id"] for s in call("GET", "/sessions?limit=200", second).json()["sessions"]}
        follow_up = {"question": "What did he say about security?", "session_id": mine}
        for refused in [
            call("GET", f"/sessions/{mine}", second),
            call("DELETE", f"/sessions/{mine}", second),
            call("POST", "/feedback", second, {"session_id": mine, "turn": 0, "rating": "down"}),
            call("POST", "/ask", second, follow_up),
            call("POST", "/ask/stream", second, follow_up),
        ]:
            assert refused.status_code == 404, refused.request.url
            assert refused.headers["content-type"] == "application/problem+json"
            assert "no conversation" in refused.json()["detail"]
        # The owner's conversation is whole: nothing of the other key's tries was added, and it goes on.
        assert len(call("GET", f"/sessions/{mine}", first).json()["turns"]) == 1
        answer = call("POST", "/ask", first, follow_up).json()
        assert "Mardan Salih" in answer["rewritten_query"] or "Qaratapa" in answer["rewritten_query"]
        assert len(call("GET", f"/sessions/{mine}", first).json()["turns"]) == 2
        # A conversation id the client chose is taken by the first key to use it.
        assert call("POST", "/ask", second, {"question": QARATAPA_QUESTION, "session_id": "desk-7"}).status_code == 200
        assert call("POST", "/ask", first, {"question": QARATAPA_QUESTION, "session_id": "desk-7"}).status_code == 404
        assert call("DELETE", f"/sessions/{mine}", first).status_code == 204


def test_feedback_on_an_answer_is_stored_and_exported(api_url: str, demo_services: Services) -> None:
    session = _post(api_url, "/ask", {"question": QARATAPA_QUESTION}).json()["session_id"]
    body = {"session_id": session, "turn": 0, "rating": "down", "comment": "Name the Iraqi commander too."}
    created = _post(api_url, "/feedback", body)
    assert created.status_code == 201 and created.json()["id"] > 0
    assert _post(api_url, "/feedback", {**body, "turn": 1}).status_code == 404
    assert _post(api_url, "/feedback", {**body, "session_id": "nobody"}).status_code == 404
    assert _post(api_url, "/feedback", {**body, "rating": "meh"}).status_code == 422
    env = {**os.environ, "BYLINE_DATA_DIR": str(demo_services.settings.data_dir)}
    export = subprocess.run(
        [sys.executable, "-m", "byline", "feedback", "export"], capture_output=True, text=True, env=env, check=True
    )
    records = [json.loads(line) for line in export.stdout.splitlines()]
    mine = next(r for r in records if r["session_id"] == session)
    assert (mine["rating"], mine["comment"], mine["turn"]) == ("down", "Name the Iraqi commander too.", 0)
    assert mine["question"] == QARATAPA_QUESTION and "Mardan Salih" in mine["answer"]
    assert mine["citations"][0]["article_id"] == QARATAPA_ID
