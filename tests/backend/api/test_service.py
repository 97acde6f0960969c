"""The service beyond questions: writing the archive over HTTP, admin keys, limits, rate limiting,
and the OpenAI-compatible chat, through a real uvicorn server (and TestClient for the edges)."""

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from backend.api.app import create_app
from backend.api.limits import RateLimiter
from backend.embedding import SentenceTransformerEmbedder
from backend.services import Services, build_services
from backend.settings import ApiSettings, Settings
from ingest.loaders import FORMATS, suffixes
from ingest.pipeline import writer_lock
from ingest.writer import safe_name, with_writer
from tests.conftest import DEMO, QARATAPA_ID, QARATAPA_QUESTION, ServerThread

pytestmark = pytest.mark.integration

FRESH = {
    "id": "fresh-1",
    "url": "https://harbor-post.example/2024/05/lighthouse",
    "title": "Port Calder lighthouse relit after restoration",
    "published_at": "2024-05-02",
    "source": "Harbor Post",
    "authors": ["Lena Ortiz"],
    "text": "The Port Calder lighthouse shone again on Thursday after a two-year restoration led by engineer "
    "Tomas Quill. The lamp, first lit in 1871, now runs on solar power, Quill said.",
}


def _writable(tmp_path: Path, embedder: SentenceTransformerEmbedder, **settings: object) -> Services:
    base = Settings(data_dir=tmp_path / "data", api=ApiSettings(rate_per_minute=0))
    return with_writer(build_services(base.model_copy(update=settings), embedder))


@pytest.fixture
def server(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> Iterator[ServerThread]:
    with ServerThread(_writable(tmp_path, embedder)) as running:
        yield running


def test_articles_posted_over_http_are_searchable_answerable_listed_and_deletable(server: ServerThread) -> None:
    url = server.url
    copy = {**FRESH, "id": "fresh-copy", "url": "https://meridian-wire.example/lighthouse", "source": "Meridian Wire"}
    posted = httpx.post(f"{url}/articles", json={"articles": [FRESH, {"title": "no text"}, copy]}, timeout=60)
    assert posted.status_code == 200
    results = posted.json()["results"]
    assert [(r["index"], r["id"], r["status"]) for r in results] == [
        (0, "fresh-1", "new"),
        (1, None, "failed"),
        (2, "fresh-copy", "copy"),
    ]
    assert "text" in results[1]["detail"] and "fresh-1" in results[2]["detail"]

    again = httpx.post(f"{url}/articles", json={"articles": [FRESH]}, timeout=60).json()["results"]
    assert again[0]["status"] == "unchanged"

    answer = httpx.post(f"{url}/ask", json={"question": "Who led the lighthouse restoration?"}, timeout=60).json()
    assert "Tomas Quill" in answer["answer"] and answer["citations"][0]["article_id"] == "fresh-1"
    listed = httpx.get(f"{url}/articles", params={"source": "Harbor Post"}, timeout=30).json()
    assert listed["total"] == 1 and listed["articles"][0]["id"] == "fresh-1"
    assert httpx.get(f"{url}/articles", params={"q": "LIGHTHOUSE"}, timeout=30).json()["total"] == 1
    assert httpx.get(f"{url}/articles/fresh-copy", timeout=30).json()["id"] == "fresh-1"  # a copy opens its original

    removed = httpx.delete(f"{url}/articles/fresh-1", timeout=30)
    assert removed.status_code == 200 and removed.json()["kind"] == "article" and removed.json()["chunks"] >= 1
    search = httpx.post(f"{url}/search", json={"query": "Port Calder lighthouse Tomas Quill"}, timeout=30).json()
    assert "fresh-1" not in {r["article_id"] for r in search["results"]}
    gone = httpx.delete(f"{url}/articles/fresh-1", timeout=30)
    assert gone.status_code == 404 and gone.headers["content-type"] == "application/problem+json"


def test_uploaded_files_are_reported_by_name_without_server_paths(server: ServerThread) -> None:
    good = json.dumps(FRESH) + "\n{not json\n"
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Valley Courier</title>'
        "<item><title>Dam inspection finds no cracks</title><link>https://valley-courier.example/dam</link>"
        "<pubDate>Tue, 07 May 2024 09:00:00 GMT</pubDate>"
        "<description>Inspectors found the Ardenvale dam sound after the spring floods, the water board said."
        "</description></item></channel></rss>"
    )
    files = [
        ("files", ("../../etc/news today.jsonl", good.encode(), "application/octet-stream")),
        ("files", ("valley.rss", feed.encode(), "application/rss+xml")),
        ("files", ("photo.png", b"\x89PNG\r\n\x1a\n\x00\x00", "image/png")),
    ]
    response = httpx.post(f"{server.url}/articles/files", files=files, timeout=120)
    assert response.status_code == 200
    by_name = {f["name"]: f for f in response.json()["files"]}
    assert set(by_name) == {"news_today.jsonl", "valley.rss", "photo.png"}
    assert (by_name["news_today.jsonl"]["new"], len(by_name["news_today.jsonl"]["errors"])) == (1, 1)
    assert by_name["news_today.jsonl"]["errors"][0].startswith("news_today.jsonl:2:")
    assert by_name["valley.rss"]["new"] == 1 and not by_name["valley.rss"]["errors"]
    assert by_name["photo.png"]["new"] == 0 and "unsupported" in by_name["photo.png"]["errors"][0]
    assert "byline-upload" not in response.text and "/tmp" not in response.text
    titles = {a["title"] for a in httpx.get(f"{server.url}/articles", timeout=30).json()["articles"]}
    assert titles == {FRESH["title"], "Dam inspection finds no cracks"}


def test_upload_names_cannot_leave_the_upload_folder() -> None:
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("..\\..\\x.csv") == "x.csv"
    assert safe_name(".hidden.jsonl") == "hidden.jsonl"
    assert safe_name("a b;rm -rf.txt") == "a_b_rm_-rf.txt"
    assert safe_name("") == "upload"


def test_admin_keys_alone_may_write(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    keys = {"api_keys": SecretStr("reader"), "admin_keys": SecretStr("boss")}
    with ServerThread(_writable(tmp_path, embedder, **keys)) as server:
        url, body = server.url, {"articles": [FRESH]}
        assert httpx.post(f"{url}/articles", json=body, timeout=30).status_code == 401
        as_reader = httpx.post(f"{url}/articles", json=body, headers={"X-API-Key": "reader"}, timeout=30)
        assert as_reader.status_code == 403 and "admin" in as_reader.json()["detail"]
        assert httpx.delete(f"{url}/articles/x", headers={"X-API-Key": "reader"}, timeout=30).status_code == 403
        as_admin = httpx.post(f"{url}/articles", json=body, headers={"Authorization": "Bearer boss"}, timeout=60)
        assert as_admin.status_code == 200 and as_admin.json()["results"][0]["status"] == "new"
        # Admins read too; a wrong key next to a right one is refused, not ignored.
        assert httpx.get(f"{url}/archive", headers={"X-API-Key": "boss"}, timeout=30).status_code == 200
        both = {"X-API-Key": "reader", "Authorization": "Bearer guess"}
        assert httpx.get(f"{url}/archive", headers=both, timeout=30).status_code == 401


def test_a_read_only_server_and_a_busy_archive_refuse_writes_with_503(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    services = _writable(tmp_path, embedder)
    client = TestClient(create_app(services))
    with writer_lock(services.settings):  # as a CLI ingest would hold it
        busy = client.post("/articles", json={"articles": [FRESH]})
    assert busy.status_code == 503 and int(busy.headers["retry-after"]) > 0
    assert "another ingest" in busy.json()["detail"] and str(tmp_path) not in busy.text
    assert client.post("/articles", json={"articles": [FRESH]}).status_code == 200  # nothing was lost meanwhile

    read_only = TestClient(create_app(build_services(services.settings, embedder)))
    refused = read_only.post("/articles", json={"articles": [FRESH]})
    assert refused.status_code == 503 and "read-only" in refused.json()["detail"]


def test_the_formats_a_server_reads_are_the_ingest_registry_and_refused_by_a_read_only_one(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    services = _writable(tmp_path, embedder)
    client = TestClient(create_app(services))
    answer = client.get("/archive/formats")
    assert answer.status_code == 200
    body = answer.json()
    assert [f["name"] for f in body["formats"]] == list(FORMATS)
    assert body["suffixes"] == list(suffixes()) and {".text", ".markdown", ".xml"} <= set(body["suffixes"])
    assert body["formats"][0] == {"name": "jsonl", "label": "JSON Lines", "suffixes": [".jsonl", ".ndjson"]}
    # An upload no format reads is reported as before, without waiting for the write lock another writer holds.
    with writer_lock(services.settings):
        photo = client.post("/articles/files", files=[("files", ("photo.PNG", b"\x89PNG", "image/png"))])
    assert photo.status_code == 200
    assert photo.json()["files"][0]["errors"] == ["photo.PNG: unsupported file type '.PNG'"]

    read_only = TestClient(create_app(build_services(services.settings, embedder)))
    refused = read_only.get("/archive/formats")
    assert refused.status_code == 503 and refused.headers["content-type"] == "application/problem+json"
    assert "read-only" in refused.json()["detail"]


def test_bodies_beyond_the_limit_get_413_even_without_content_length(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    limits = ApiSettings(max_body_bytes=4_096, max_upload_bytes=20_000, rate_per_minute=0)
    with ServerThread(_writable(tmp_path, embedder, api=limits)) as server:
        url = server.url
        declared = httpx.post(f"{url}/ask", json={"question": "x" * 5_000}, timeout=30)
        assert declared.status_code == 413 and declared.headers["content-type"] == "application/problem+json"

        def chunked() -> Iterator[bytes]:  # no Content-Length: the server must count as it reads
            yield b'{"question": "'
            for _ in range(10):
                yield b"y" * 1_000
            yield b'"}'

        streamed = httpx.post(f"{url}/ask", content=chunked(), headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413 and "4,096 bytes" in streamed.json()["detail"]
        # The upload route has its own, larger limit.
        small = [("files", ("a.txt", b"Title\n\n" + b"Some words. " * 800, "text/plain"))]
        assert httpx.post(f"{url}/articles/files", files=small, timeout=60).status_code == 200
        large = [("files", ("b.txt", b"z" * 30_000, "text/plain"))]
        assert httpx.post(f"{url}/articles/files", files=large, timeout=60).status_code == 413
        assert httpx.get(f"{url}/health", timeout=30).status_code == 200  # and the server is fine


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/articles", {"articles": [FRESH] * 4}, "at most 3 articles"),
        ("/articles", {"articles": []}, "articles"),
        ("/articles", {"articles": [FRESH], "extra": 1}, "extra"),
        ("/v1/chat/completions", {"model": "byline", "messages": [{"role": "user", "content": "hi"}] * 5}, "at most 4"),
        ("/v1/chat/completions", {"model": "byline", "messages": [{"role": "user", "content": "q" * 2001}]}, "2000"),
        ("/v1/chat/completions", {"model": "byline", "messages": [{"role": "assistant", "content": "x"}]}, "last"),
        ("/v1/chat/completions", {"model": "byline", "messages": [], "tools": []}, "tools"),
        ("/ask", {"question": "q" * 2001}, "question"),
        ("/ask", {"question": "q", "k": 51}, "k"),
        ("/search", {"query": "q", "k": 0}, "k"),
        ("/ask", {"question": "q", "as_of": "2024-02-30"}, "as_of"),
    ],
)
def test_limits_answer_4xx_problems(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, path: str, body: object, needle: str
) -> None:
    limits = ApiSettings(max_articles_per_request=3, max_messages=4, rate_per_minute=0)
    client = TestClient(create_app(_writable(tmp_path, embedder, api=limits)))
    response = client.post(path, json=body)
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert needle in response.json()["detail"]


def test_rate_limit_per_key_answers_429_with_retry_after(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    limits = ApiSettings(rate_per_minute=6, rate_burst=3)
    services = _writable(tmp_path, embedder, api=limits, api_keys=SecretStr("alice,bob"))
    with ServerThread(services) as server:
        alice, bob = {"X-API-Key": "alice"}, {"X-API-Key": "bob"}
        codes = [httpx.get(f"{server.url}/archive", headers=alice, timeout=30).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = httpx.get(f"{server.url}/archive", headers=alice, timeout=30)
        assert limited.headers["content-type"] == "application/problem+json"
        assert 1 <= int(limited.headers["retry-after"]) <= 10
        assert httpx.get(f"{server.url}/archive", headers=bob, timeout=30).status_code == 200  # a bucket each
        assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200  # probes are never limited


def test_rate_limiter_refills_with_time() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    assert [limiter.take("a"), limiter.take("a"), limiter.take("a")] == [0, 0, 1]
    assert limiter.take("b") == 0
    now[0] = 0.5
    assert limiter.take("a") == 1  # half a token back, not yet a whole one
    now[0] = 1.5
    assert limiter.take("a") == 0


@pytest.fixture(scope="module")
def openai_url(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> Iterator[str]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("oai") / "data", api_keys=SecretStr("sk-byline"))
    services = build_services(settings, embedder)
    from ingest.pipeline import Ingestor

    Ingestor(settings, embedder, services.store, services.registry).ingest([DEMO])
    with ServerThread(services) as server:
        yield f"{server.url}/v1"


def test_the_official_openai_client_gets_a_cited_answer(openai_url: str) -> None:
    client = openai.OpenAI(base_url=openai_url, api_key="sk-byline")
    assert [m.id for m in client.models.list()] == ["byline"]
    completion = client.chat.completions.create(
        model="byline", messages=[{"role": "user", "content": QARATAPA_QUESTION}]
    )
    text = completion.choices[0].message.content or ""
    assert "Mardan Salih" in text and "[1]" in text and "\n\nSources:\n[1] " in text
    citations = (completion.model_extra or {})["citations"]
    assert citations[0]["article_id"] == QARATAPA_ID and citations[0]["n"] == 1

    stream = client.chat.completions.create(
        model="byline", messages=[{"role": "user", "content": QARATAPA_QUESTION}], stream=True
    )
    pieces, last = [], None
    for chunk in stream:
        last = chunk
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    assert len(pieces) > 2 and "".join(pieces) == text
    assert last is not None and last.choices[0].finish_reason == "stop"
    assert (last.model_extra or {})["citations"][0]["article_id"] == QARATAPA_ID


def test_the_openai_client_carries_the_conversation_and_sees_errors(openai_url: str) -> None:
    client = openai.OpenAI(base_url=openai_url, api_key="sk-byline")
    first = client.chat.completions.create(model="byline", messages=[{"role": "user", "content": QARATAPA_QUESTION}])
    follow_up = client.chat.completions.create(
        model="byline",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": QARATAPA_QUESTION},
            {"role": "assistant", "content": first.choices[0].message.content or ""},
            {"role": "user", "content": "What did he say about security?"},
        ],
        extra_body={"as_of": "2024-01-01"},
    )
    assert "99 percent" in (follow_up.choices[0].message.content or "")
    assert "Mardan Salih" in (follow_up.model_extra or {})["rewritten_query"]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=openai_url, api_key="wrong").models.list()


def test_langchain_chat_openai_talks_to_the_archive(openai_url: str) -> None:
    chat = ChatOpenAI(base_url=openai_url, api_key=SecretStr("sk-byline"), model="byline")
    reply = chat.invoke(QARATAPA_QUESTION)
    assert "Mardan Salih" in str(reply.content) and "Sources:" in str(reply.content)
    streamed = "".join(str(chunk.content) for chunk in chat.stream(QARATAPA_QUESTION))
    assert streamed == reply.content


def test_the_documentation_lists_every_route(server: ServerThread) -> None:
    assert httpx.get(f"{server.url}/docs", timeout=30).status_code == 200
    paths = httpx.get(f"{server.url}/openapi.json", timeout=30).json()["paths"]
    for path in ("/ask", "/ask/stream", "/search", "/sessions", "/sessions/{session_id}", "/feedback", "/archive",
                 "/archive/formats", "/articles", "/articles/files", "/articles/{article_id}", "/v1/chat/completions",
                 "/v1/models",
                 "/health", "/ready"):  # fmt: skip
        assert path in paths, path


def test_a_write_that_needs_a_full_lexical_rebuild_is_told_to_retry_while_the_rebuild_runs_outside_it(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    """A CLI run that died between the vector store's write and the lexical index's leaves its marker; the
    server's next write must not rebuild the whole index inside the request."""
    services = _writable(tmp_path, embedder)
    assert services.writer is not None
    client = TestClient(create_app(services))
    assert client.post("/articles", json={"articles": [FRESH]}).json()["results"][0]["status"] == "new"
    rebuilt_in: list[str] = []
    rebuild = services.lexical.rebuild

    def recording(chunks: object) -> None:
        rebuilt_in.append(threading.current_thread().name)
        rebuild(chunks)  # type: ignore[arg-type]

    services.lexical.rebuild = recording  # type: ignore[method-assign]
    services.lexical.mark_pending()  # as a killed ingest run leaves it
    second = {
        **FRESH,
        "id": "fresh-2",
        "url": "https://harbor-post.example/2024/05/ferry",
        "title": "Ferry to Port Calder resumes",
        "text": "The ferry to Port Calder sailed again on Friday after the harbour works, its captain said.",
    }
    refused = client.post("/articles", json={"articles": [second]})
    assert refused.status_code == 503 and refused.headers["content-type"] == "application/problem+json"
    assert "rebuilt" in refused.json()["detail"] and int(refused.headers["retry-after"]) > 0
    services.writer.wait_for_rebuild(120)  # type: ignore[attr-defined]
    assert rebuilt_in == ["byline-lexical-rebuild"]  # never the request's thread
    assert not services.lexical.pending
    assert client.post("/articles", json={"articles": [second]}).json()["results"][0]["status"] == "new"
    assert services.lexical.count() == services.store.count()
