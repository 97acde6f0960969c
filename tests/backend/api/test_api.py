"""The HTTP contract, through a real uvicorn server on a free loopback port."""

from datetime import date

import httpx
import pytest

from tests.conftest import QARATAPA_ID, QARATAPA_QUESTION

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
    assert set(results[0]) == {"chunk_id", "article_id", "url", "title", "source", "published_at", "text", "score"}
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
