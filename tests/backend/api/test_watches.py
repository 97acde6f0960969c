"""Saved questions through a real server: made, checked in the background after an article is posted,
listed with their unread events, read, kept from other keys, and delivered to real loopback webhooks that
verify the signature (one of them failing twice first)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from backend.answering.webhooks import EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from backend.embedding import SentenceTransformerEmbedder
from backend.services import Services, build_services, start_watching
from backend.settings import ApiSettings, FollowSettings, Settings, WatchSettings
from ingest.writer import with_writer
from tests.backend.answering.test_watch import COMMANDER, TRAM
from tests.conftest import QARATAPA_QUESTION, ServerThread, wait_for

pytestmark = pytest.mark.integration

KEY_A, KEY_B = "reader-key-a", "reader-key-b"


class Receiver:
    """A webhook receiver on a loopback port: answers 500 to the first ``failures`` requests, then 204, and
    keeps every request it got with whether its signature verified."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.secret = ""
        self.got: list[tuple[dict[str, str], bytes, bool]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = dict(self.headers.items())
                ok = verify(receiver.secret, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
                receiver.got.append((headers, body, ok))
                self.send_response(500 if len(receiver.got) <= receiver.failures else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/byline"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def watching(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> Iterator[Services]:
    settings = Settings(
        data_dir=tmp_path / "data",
        api_keys=SecretStr(f"{KEY_A},{KEY_B}"),
        api=ApiSettings(rate_per_minute=0),
        follow=FollowSettings(allow_networks="127.0.0.0/8"),
        watches=WatchSettings(max_per_owner=3, webhook_backoff_s=0.05, webhook_attempts=4, webhook_timeout_s=5),
    )
    services = start_watching(build_services(settings, embedder))
    assert services.watching is not None
    services = with_writer(services, on_stored=services.watching.runner.notify)
    yield services
    services.close()


def _client(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60)


def test_a_watch_records_an_event_delivers_it_signed_and_keeps_it_from_other_keys(watching: Services) -> None:
    with ServerThread(watching) as server, Receiver() as good, Receiver(failures=2) as flaky:
        a, b = _client(server.url, KEY_A), _client(server.url, KEY_B)
        made = a.post("/watches", json={"question": QARATAPA_QUESTION, "webhook_url": good.url})
        assert made.status_code == 201, made.text
        watch = made.json()
        good.secret = watch["webhook_secret"]
        assert len(good.secret) == 64 and watch["unread"] == 0 and watch["events"] == 0
        assert watch["filters"] == {"sources": [], "published_after": None, "published_before": None}
        second = a.post("/watches", json={"question": QARATAPA_QUESTION, "webhook_url": flaky.url}).json()
        flaky.secret = second["webhook_secret"]
        filtered = a.post(
            "/watches", json={"question": QARATAPA_QUESTION, "filters": {"sources": ["Harbor Post"]}}
        ).json()
        assert filtered["webhook_secret"] is None and filtered["filters"]["sources"] == ["Harbor Post"]
        too_many = a.post("/watches", json={"question": "one more"})
        assert too_many.status_code == 422 and too_many.headers["content-type"] == "application/problem+json"

        listed = a.get("/watches").json()
        assert [w["id"] for w in listed["watches"]] == [filtered["id"], second["id"], watch["id"]]
        assert all(w["webhook_secret"] is None for w in listed["watches"]) and listed["unread"] == 0
        assert b.get("/watches").json() == {"watches": [], "unread": 0}

        posted = a.post("/articles", json={"articles": [COMMANDER, TRAM]})
        assert [r["status"] for r in posted.json()["results"]] == ["new", "new"]
        events_url = f"/watches/{watch['id']}/events"
        wait_for("the event", lambda: bool(a.get(events_url).json()["events"]))
        [event] = a.get(events_url).json()["events"]
        assert event["watch_id"] == watch["id"] and event["read"] is False
        assert event["article"] == {
            "id": COMMANDER["id"],
            "title": COMMANDER["title"],
            "url": COMMANDER["url"],
            "source": "Northern Dispatch",
            "published_at": "2024-05-07T00:00:00Z",
        }
        short = event["answer"]["short_answer"]
        assert "Aram Dizayi" in short["text"] and short["sure"] is True
        cited = event["answer"]["citations"][short["n"] - 1]
        assert cited["article_id"] == COMMANDER["id"] and "Aram Dizayi" in event["answer"]["text"]
        wait_for("the checker", lambda: watching.watches.pending() == 0)
        assert a.get(f"/watches/{filtered['id']}/events").json() == {"events": []}  # another outlet

        mine = {w["id"]: w for w in a.get("/watches").json()["watches"]}
        assert a.get("/watches").json()["unread"] == 2 and mine[watch["id"]]["unread"] == 1
        assert mine[watch["id"]]["last_event_at"] is not None
        for call in (b.get(events_url), b.post(f"/watches/{watch['id']}/read"), b.delete(f"/watches/{watch['id']}")):
            assert call.status_code == 404 and call.headers["content-type"] == "application/problem+json"
        assert a.post(f"/watches/{watch['id']}/read").status_code == 204
        assert a.get(events_url, params={"unread": True}).json() == {"events": []}
        assert a.get(events_url).json()["events"][0]["read"] is True and a.get("/watches").json()["unread"] == 1

        # The webhooks: one delivery, verified; the flaky receiver gets the event on its third attempt.
        wait_for("the delivery", lambda: len(good.got) == 1 and len(flaky.got) == 3, limit_s=30)
        headers, body, verified = good.got[0]
        assert verified and headers[EVENT_HEADER] == event["id"]
        delivered = json.loads(body)
        assert delivered["article"]["id"] == COMMANDER["id"] and delivered["answer"]["text"] == event["answer"]["text"]
        assert all(ok for _, _, ok in flaky.got) and len({h[EVENT_HEADER] for h, _, _ in flaky.got}) == 1
        flaky_event = json.loads(flaky.got[0][1])["id"]
        wait_for("the delivery recorded", lambda: (watching.watches.delivery(flaky_event) or (0,))[0] == 3)
        attempts, next_at, error, delivered_at = watching.watches.delivery(flaky_event) or (0, None, None, None)
        assert (attempts, next_at, error) == (3, None, None) and delivered_at
        time.sleep(0.3)
        assert len(flaky.got) == 3 and len(good.got) == 1  # nothing delivered twice

        assert a.delete(f"/watches/{watch['id']}").status_code == 204
        assert a.get(events_url).status_code == 404


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.1.2.3/hook", "private"),
        ("ftp://127.0.0.1/hook", "ftp"),
        ("not a url", "scheme"),
    ],
)
def test_a_webhook_byline_must_not_reach_is_refused(watching: Services, url: str, why: str) -> None:
    with ServerThread(watching) as server, _client(server.url, KEY_A) as a:
        refused = a.post("/watches", json={"question": QARATAPA_QUESTION, "webhook_url": url})
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
        assert why in refused.json()["detail"]
        assert a.get("/watches").json()["watches"] == []
        assert httpx.get(f"{server.url}/watches", timeout=10).status_code == 401  # keys are asked for


def test_a_webhook_connects_only_to_the_address_its_check_approved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the webhook's host resolves to loopback (allowed here) when checked, and to a private
    address for any later lookup; the delivery reaches the checked address, and only one lookup is made."""
    import socket
    from datetime import UTC, datetime

    from backend.answering.webhooks import WebhookSender
    from backend.core.net import parse_networks
    from backend.core.types import EventArticle, ShortAnswer
    from backend.store.watches import WatchStore

    real = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "hooks.test":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        address = "127.0.0.1" if len(lookups) == 1 else "10.66.66.66"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    store = WatchStore(tmp_path / "watches.sqlite3")
    with Receiver() as receiver:
        url = receiver.url.replace("127.0.0.1", "hooks.test")
        watch = store.create("", QARATAPA_QUESTION, webhook_url=url)
        assert watch.webhook_secret is not None
        receiver.secret = watch.webhook_secret
        article = EventArticle("a-1", "New commander", None, "Northern Dispatch", datetime(2024, 5, 7, tzinfo=UTC))
        assert store.record(watch, article, "Aram Dizayi [1].", (), ShortAnswer("Aram Dizayi", 1, 0.9)) is not None
        sender = WebhookSender(store, WatchSettings(webhook_timeout_s=5), parse_networks("127.0.0.0/8"))
        try:
            assert sender.deliver_due() == 1
        finally:
            sender.stop()
    assert lookups == ["hooks.test"]
    ((headers, _, verified),) = receiver.got
    assert verified and headers["Host"] == url.split("/")[2]
