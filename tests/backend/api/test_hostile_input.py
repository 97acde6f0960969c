"""Hostile and careless input, second pass: each defect an outside probe of a running server found,
reproduced here before it was fixed (issue 17), plus properties over any record and any date."""

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from backend.api.app import create_app
from backend.embedding import SentenceTransformerEmbedder
from backend.services import Services, build_services
from backend.settings import ApiSettings, Settings
from ingest.normalize import RecordError, article_from_record
from ingest.pipeline import Ingestor
from ingest.writer import with_writer
from tests.conftest import DEMO, ServerThread

pytestmark = pytest.mark.integration

READ, READ2, ADMIN = "readkey1", "readkey2", "adminkey"
OUT_OF_RANGE = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+01:00", 1e20]


def _services(root: Path, embedder: SentenceTransformerEmbedder, demo: bool = False, **api: Any) -> Services:
    settings = Settings(
        data_dir=root / "data",
        api_keys=SecretStr(f"{READ},{READ2}"),
        admin_keys=SecretStr(ADMIN),
        api=ApiSettings(**{"rate_per_minute": 0, **api}),
    )
    services = with_writer(build_services(settings, embedder))
    if demo:
        Ingestor(settings, embedder, services.store, services.registry, services.lexical).ingest([DEMO])
    return services


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> Services:
    return _services(tmp_path_factory.mktemp("keyed"), embedder, demo=True)


@pytest.fixture(scope="module")
def client(keyed: Services) -> Iterator[TestClient]:
    with TestClient(create_app(keyed)) as test_client:
        yield test_client


def _as(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


# 1 and 7: out-of-range and impossible dates, ids with hidden characters


def test_a_mixed_batch_stores_each_good_article_and_says_exactly_which(client: TestClient, keyed: Services) -> None:
    articles: list[dict[str, Any]] = [
        {"id": "ok-1", "text": "A fine article body about the harbour."},
        *(
            {"id": f"bad-{i}", "text": f"Body {i} with a date no calendar holds.", "date": d}
            for i, d in enumerate(OUT_OF_RANGE)
        ),
        {"id": "minus-one", "text": "A story dated minus one.", "published_at": "-1"},
        {"id": "bool-date", "text": "A story dated true.", "date": True},
        {"id": "ancient", "text": "A story dated 1066.", "published_at": "1066-10-14"},
        {"id": "a\u0000b", "text": "An id with a NUL in it."},
        {"id": "x\u202eb", "text": "An id with a right-to-left override."},
        {"id": "dated-ok", "text": "A story with a good date.", "published_at": "2023-10-04"},
    ]
    response = client.post("/articles", json={"articles": articles}, headers=_as(ADMIN))
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(articles)))
    stored = {r["id"] for r in results if r["status"] == "new"}
    failed = [r for r in results if r["status"] == "failed"]
    # Every article with a story is stored; an impossible date leaves it undated, with the reason said.
    assert stored == {"ok-1", "bad-0", "bad-1", "bad-2", "minus-one", "bool-date", "ancient", "dated-ok"}
    for r in results:
        if r["id"] in stored - {"ok-1", "dated-ok"}:
            assert "kept undated" in r["detail"], r
    assert len(failed) == 2 and all("id" in r["detail"] for r in failed)
    assert "U+0000" in failed[0]["detail"] and "U+202E" in failed[1]["detail"]
    # The registry holds exactly what the response says was stored, dated only where the date was real.
    records = keyed.registry.get(sorted(stored))
    assert set(records) == stored
    assert {i for i, r in records.items() if r.published_at} == {"dated-ok"}
    archive = client.get("/archive", headers=_as(READ)).json()
    assert archive["first_published"] is None or archive["first_published"] >= "1800"


def _mixed_files(folder: Path) -> list[Path]:
    """33 good JSONL records then one with a date past year 9999, and the same fault in the other formats."""
    good = [{"id": f"g-{i}", "text": f"Good story number {i} about the harbour and its ships."} for i in range(33)]
    bad = {"id": "g-bad", "text": "A story from beyond the calendar.", "published_at": "9999-12-31T23:59:59-14:00"}
    jsonl = folder / "batch.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in [*good, bad]), encoding="utf-8")
    csv = folder / "batch.csv"
    csv.write_text("id,text,published_at\nc-1,A CSV story.,2023-01-02\nc-2,A CSV story from far ahead.,9999-12-31\n")
    markdown = folder / "story.md"
    markdown.write_text("---\ntitle: Far ahead\ndate: 0001-01-01T00:00:00+01:00\n---\nA front matter story.\n")
    rss = folder / "feed.rss"
    rss.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        "<item><title>Item one</title><link>https://feed.example/1</link>"
        "<description>An item from beyond the calendar.</description>"
        "<pubDate>Fri, 31 Dec 9999 23:59:59 -1400</pubDate></item></channel></rss>"
    )
    return [jsonl, csv, markdown, rss]


def test_an_upload_with_one_bad_date_is_stored_whole(client: TestClient, keyed: Services, tmp_path: Path) -> None:
    jsonl = _mixed_files(tmp_path)[0]
    with jsonl.open("rb") as fh:
        response = client.post("/articles/files", files={"files": ("batch.jsonl", fh)}, headers=_as(ADMIN))
    assert response.status_code == 200, response.text
    (outcome,) = response.json()["files"]
    assert (outcome["records"], outcome["new"], outcome["errors"]) == (34, 34, [])
    assert any(w.startswith("batch.jsonl:34:") and "undated" in w for w in outcome["warnings"])
    assert set(keyed.registry.get([f"g-{i}" for i in range(33)] + ["g-bad"])) == {
        *(f"g-{i}" for i in range(33)),
        "g-bad",
    }


@pytest.mark.slow
def test_byline_ingest_reports_bad_dates_by_file_and_line_in_every_format(tmp_path: Path) -> None:
    files = _mixed_files(tmp_path)
    env = {**os.environ, "BYLINE_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "-m", "byline", "ingest", *map(str, files)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output and "OverflowError" not in output
    assert "38 new" in output  # 34 JSONL records, 2 CSV rows, the Markdown story and the feed item: all stored
    for where in ("batch.jsonl:34:", "batch.csv:3:", "story.md", "feed.rss"):
        assert any(where in line and "undated" in line for line in output.splitlines()), where


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.dictionaries(
        st.sampled_from(["id", "text", "body", "title", "url", "date", "published_at", "source", "authors", "x"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
            max_leaves=8,
        ),
    )
)
def test_any_json_record_becomes_an_article_or_a_reason(record: dict[str, Any]) -> None:
    try:
        article, warnings = article_from_record(record)
    except RecordError as exc:
        assert str(exc)
        return
    assert article.text and article.id and all(isinstance(w, str) for w in warnings)
    assert article.published_at is None or article.published_at.year >= 1800
    assert not any(ch in article.id for ch in "\x00\u202e")


@settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.fixed_dictionaries(
            {"text": st.sampled_from(["A short story about the harbour.", "", "   "]) | st.text(max_size=40)},
            optional={
                "id": st.text(max_size=12),
                "published_at": st.text(max_size=25),
                "date": st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=25),
                "title": st.text(max_size=20),
            },
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_batch_is_stored_article_by_article_as_the_response_says(
    client: TestClient, keyed: Services, batch: list[dict[str, Any]]
) -> None:
    response = client.post("/articles", json={"articles": batch}, headers=_as(ADMIN))
    if response.status_code == 422:  # a field the request schema refuses (a title over its limit, say)
        return
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == len(batch)
    kept = {r["id"] for r in results if r["status"] in ("new", "updated", "unchanged")}
    assert set(keyed.registry.get(sorted(kept))) == kept
    for r in results:
        assert r["status"] != "failed" or r["detail"]


# 2 and 10: boundary and non-ISO dates on the query side


EXTREMES = ["9999-12-31", "0001-01-01", "0001-01-05"]
TIME_QUESTIONS = ["what happened last year", "What happened two weeks ago?", "Who commands the sector?"]


@pytest.mark.parametrize("as_of", EXTREMES)
@pytest.mark.parametrize("question", TIME_QUESTIONS)
def test_boundary_days_answer_on_every_route(client: TestClient, as_of: str, question: str) -> None:
    filters = {"published_before": "9999-12-31", "published_after": "0001-01-01"}
    for path, body in [
        ("/search", {"query": question, "as_of": as_of, "filters": filters}),
        ("/ask", {"question": question, "as_of": as_of, "filters": filters}),
        ("/ask/stream", {"question": question, "as_of": as_of}),
        (
            "/v1/chat/completions",
            {"model": "byline", "as_of": as_of, "messages": [{"role": "user", "content": question}]},
        ),
    ]:
        response = client.post(path, json=body, headers=_as(READ))
        assert response.status_code == 200, (path, response.text)
        assert "event: error" not in response.text


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    as_of=st.dates(),
    after=st.none() | st.dates(),
    before=st.none() | st.dates(),
    phrase=st.sampled_from(["last year", "two weeks ago", "since May", "last summer", "this week", "in 2023", ""]),
)
def test_any_days_give_a_200_or_a_4xx(
    client: TestClient, as_of: date, after: date | None, before: date | None, phrase: str
) -> None:
    filters = {"published_after": after and after.isoformat(), "published_before": before and before.isoformat()}
    for path, body in [
        ("/search", {"query": f"Peshmerga {phrase}", "as_of": as_of.isoformat(), "filters": filters}),
        ("/ask", {"question": f"What did the Peshmerga do {phrase}?", "as_of": as_of.isoformat(), "filters": filters}),
    ]:
        status = client.post(path, json=body, headers=_as(READ)).status_code
        assert status == 200 or (400 <= status < 500 and (after and before and after > before)), (path, status)


@pytest.mark.parametrize("bad", [0, 0.0, 1700000000, True, "1700000000", "2023-10-04T00:00:00", "yesterday"])
def test_days_in_requests_are_iso_strings_strictly(client: TestClient, bad: object) -> None:
    for path, body in [
        ("/ask/stream", {"question": "0", "as_of": bad}),
        ("/search", {"query": "0", "filters": {"published_before": bad}}),
        ("/v1/chat/completions", {"model": "byline", "as_of": bad, "messages": [{"role": "user", "content": "0"}]}),
    ]:
        response = client.post(path, json=body, headers=_as(READ))
        assert response.status_code == 422, (path, bad, response.text)
        assert response.headers["content-type"] == "application/problem+json"


# 3: a lone surrogate


def test_a_lone_surrogate_is_a_422_on_every_question_route(client: TestClient) -> None:
    raw = '"Who commands \\ud800 the sector?"'
    headers = {**_as(READ), "content-type": "application/json"}
    part = '[{"type": "text", "text": ' + raw + "}]"
    for path, body in [
        ("/v1/chat/completions", '{"model": "byline", "messages": [{"role": "user", "content": ' + raw + "}]}"),
        ("/v1/chat/completions", '{"model": "byline", "messages": [{"role": "user", "content": ' + part + "}]}"),
        ("/ask", '{"question": ' + raw + "}"),
    ]:
        response = client.post(path, content=body, headers=headers)
        assert response.status_code == 422, (path, response.text)


# 4 and 6: every key checked; docs and unknown routes behind the key


@pytest.mark.parametrize(
    ("headers", "path", "expected"),
    [
        ([("X-API-Key", READ), ("X-API-Key", "wrong")], "/archive", 401),
        ([("X-API-Key", "wrong"), ("X-API-Key", READ)], "/archive", 401),
        ([("Authorization", f"Bearer {READ}"), ("Authorization", "Bearer wrong")], "/archive", 401),
        ([("Authorization", f"Bearer {READ}"), ("X-API-Key", "wrong")], "/archive", 401),
        ([("X-API-Key", READ), ("X-API-Key", READ2)], "/archive", 200),
        ([("X-API-Key", ADMIN), ("X-API-Key", READ)], "/articles", 403),
        ([("X-API-Key", ADMIN), ("X-API-Key", "wrong")], "/articles", 401),
        ([("X-API-Key", ADMIN), ("Authorization", f"Bearer {ADMIN}")], "/articles", 200),
    ],
)
def test_every_key_a_request_presents_is_checked(
    client: TestClient, keyed: Services, headers: list[tuple[str, str]], path: str, expected: int
) -> None:
    if path == "/articles":
        body = {"articles": [{"id": "two-keys", "text": "Written by a request with two keys."}]}
        response = client.post(path, json=body, headers=headers)
    else:
        response = client.get(path, headers=headers)
    assert response.status_code == expected, response.text
    assert bool(keyed.registry.get(["two-keys"])) == (path == "/articles" and expected == 200)
    if expected == 200 and path == "/articles":
        client.delete("/articles/two-keys", headers=_as(ADMIN))


def test_docs_and_unknown_routes_answer_like_real_ones_without_a_key(
    client: TestClient, tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    for path in ("/docs", "/redoc", "/openapi.json", "/nope", "/articles/x/y/z/../admin"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=_as("wrong")).status_code == 401, path
    assert client.delete("/archive").status_code == 401  # a method no route has: 405 only with a key
    assert client.delete("/archive", headers=_as(READ)).status_code == 405
    assert client.get("/nope", headers=_as(READ)).status_code == 404
    assert "/ask" in client.get("/openapi.json", headers=_as(READ)).json()["paths"]
    assert "swagger" in client.get("/docs", headers=_as(READ)).text.lower()
    assert client.get("/health").status_code == 200 and client.head("/health").status_code == 200
    assert client.head("/ready").status_code in (200, 503)
    with TestClient(create_app(_services(tmp_path, embedder, open_docs=True))) as opened:
        assert opened.get("/openapi.json").status_code == 200 and opened.get("/docs").status_code == 200
        assert opened.get("/archive").status_code == 401  # only the docs open


# 5 and 8: real servers: the connecting address, and closing after a 413


@pytest.mark.parametrize(("trusted", "limited"), [("", True), ("127.0.0.1", False)])
def test_failed_keys_are_limited_by_the_connecting_address_unless_a_proxy_is_trusted(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, trusted: str, limited: bool
) -> None:
    services = _services(tmp_path, embedder, rate_per_minute=60, rate_burst=20, trusted_proxies=trusted)
    with ServerThread(services) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        statuses = [http.get("/archive", headers={"X-Forwarded-For": f"10.8.0.{i}"}).status_code for i in range(40)]
    assert set(statuses) == ({401, 429} if limited else {401})
    if limited:
        assert statuses[:20] == [401] * 20 and statuses[20:] == [429] * 20


def test_a_chunked_body_over_the_limit_gets_413_and_connection_close(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    with (
        ServerThread(_services(tmp_path, embedder, max_body_bytes=2048)) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        sock.sendall(
            b"POST /ask HTTP/1.1\r\nHost: t\r\nX-API-Key: readkey1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        # One chunk past the limit, then nothing more: the server reads all that was sent, so the 413 is
        # not lost to a reset over unread bytes.
        piece = b"a" * 3000
        sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(4096)
            if not data:
                break
            head += data
        lines = head.split(b"\r\n\r\n")[0].decode().lower().splitlines()
        assert lines[0].startswith("http/1.1 413")
        assert "connection: close" in lines
        sock.settimeout(5)
        try:
            while sock.recv(4096):  # the server closes: recv ends instead of waiting on a reused link
                pass
        except ConnectionResetError:  # closed with a reset: closed all the same
            pass


# 9: short junk


def test_short_junk_does_not_outrank_real_articles(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    services = _services(tmp_path, embedder, demo=True)
    words = ["Peshmerga", "spam", "cheap", "click", "Peshmerga news", "win"]
    junk = [{"id": f"junk-{i}", "text": " ".join(words[(i + j) % 6] for j in range(1 + i % 4))} for i in range(90)]
    assert services.writer is not None
    for start in range(0, 90, 30):
        services.writer.add(junk[start : start + 30])
    for question in ("Peshmerga", "Kirkuk", "security"):
        hits = services.retriever.retrieve(services.reader.query(question, k=5, as_of=date(2024, 1, 1)))
        assert hits[0].chunk.article_id.startswith("demo-"), (question, [h.chunk.article_id for h in hits])
