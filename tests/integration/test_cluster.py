"""Byline as a cluster (``demo/cluster.py``, what ``make cluster`` starts): a real PostgreSQL, a real ``chroma run``,
two ``byline serve`` replicas with separate, empty data directories. Whatever one replica writes, the other
serves at once; a replica killed mid-upload loses and duplicates nothing; PostgreSQL going away gives 503s with
Retry-After, and the replicas recover by themselves when it is back."""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backend.settings import ChromaSettings, Settings
from backend.store.db import dispose_shared
from demo.cluster import BYLINE, Cluster, Replica, upload
from demo.postgres import Unavailable
from tests.conftest import DEMO, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    try:
        with Cluster(root, replicas=2) as started:
            outcome = upload(started.servers[0].url, DEMO)
            assert outcome["errors"] == [], outcome
            yield started
    except Unavailable as why:
        pytest.skip(f"no PostgreSQL: {why}")
    finally:
        dispose_shared()


def _a(cluster: Cluster) -> Replica:
    return cluster.servers[0]


def _b(cluster: Cluster) -> Replica:
    return cluster.servers[1]


def _settings(cluster: Cluster, data_dir: Path) -> Settings:
    """This test process's view of the cluster's shared state, as a third machine would have it."""
    return Settings(
        data_dir=data_dir,
        database_url=cluster.database_url,
        chroma=ChromaSettings(mode="http", host="127.0.0.1", port=cluster.chroma_port),
    )


def test_replicas_share_no_file_and_serve_one_archive(cluster: Cluster) -> None:
    a, b = (httpx.get(f"{r.url}/archive", timeout=30).json() for r in cluster.servers)
    assert a["articles"] == b["articles"] > 0
    assert a["chunks"] == b["chunks"] > 0
    for replica in cluster.servers:
        left = {p.name for p in replica.data_dir.iterdir() if not p.name.startswith(".")}
        assert not {n for n in left if n.endswith((".sqlite3", ".db"))}, f"replica {replica.name} keeps {left}"


def test_an_article_ingested_through_a_is_found_through_b_at_once(cluster: Cluster) -> None:
    article = {
        "id": "cluster-wheat",
        "title": "Zorvath cooperative doubles its winter wheat silos",
        "text": "The Zorvath farming cooperative opened four new grain silos on Monday, doubling the winter wheat"
        " it can store. Its chair, Lenna Marsh, said the silos would hold the harvest until prices recover.",
        "published_at": "2023-11-06",
        "source": "Valley Courier",
    }
    added = httpx.post(f"{_a(cluster).url}/articles", json={"articles": [article]}, timeout=120)
    assert added.status_code == 200, added.text
    assert added.json()["results"][0]["status"] == "new"
    b = _b(cluster).url
    assert httpx.get(f"{b}/articles/cluster-wheat", timeout=30).status_code == 200
    found = httpx.post(f"{b}/search", json={"query": "Zorvath cooperative silos", "k": 3}, timeout=30).json()
    assert found["results"][0]["article_id"] == "cluster-wheat"
    listed = httpx.get(f"{b}/articles", params={"q": "Zorvath"}, timeout=30).json()
    assert [a["id"] for a in listed["articles"]] == ["cluster-wheat"]


def test_a_conversation_started_on_a_continues_on_b(cluster: Cluster) -> None:
    first = httpx.post(
        f"{_a(cluster).url}/ask", json={"question": "Who commands the Qaratapa-Hamrin sector?"}, timeout=120
    )
    assert first.status_code == 200, first.text
    session = first.json()["session_id"]
    follow = httpx.post(
        f"{_b(cluster).url}/ask",
        json={"question": "What did he say about security?", "session_id": session},
        timeout=120,
    )
    assert follow.status_code == 200, follow.text
    # The follow-up was read with the first turn as its history: B knew who "he" is.
    assert "Qaratapa" in follow.json()["rewritten_query"] or "sector" in follow.json()["rewritten_query"]
    turns = httpx.get(f"{_a(cluster).url}/sessions/{session}", timeout=30).json()["turns"]
    assert [t["question"] for t in turns] == [
        "Who commands the Qaratapa-Hamrin sector?",
        "What did he say about security?",
    ]


def test_feedback_given_on_both_replicas_is_exported_once(cluster: Cluster, tmp_path: Path) -> None:
    ids = []
    for replica in cluster.servers:
        asked = httpx.post(f"{replica.url}/ask", json={"question": f"What did {replica.name} hear?"}, timeout=120)
        session = asked.json()["session_id"]
        given = httpx.post(
            f"{replica.url}/feedback",
            json={"session_id": session, "turn": 0, "rating": "down", "comment": f"from {replica.name}"},
            timeout=30,
        )
        assert given.status_code == 201, given.text
        ids.append(given.json()["id"])
    out = tmp_path / "feedback.jsonl"
    env = {**cluster.replica_env(), "BYLINE_DATA_DIR": str(tmp_path / "exporter")}
    done = subprocess.run(
        [*BYLINE, "feedback", "export", "--out", str(out)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    mine = [r for r in rows if r["comment"] in ("from a", "from b")]
    assert sorted(r["comment"] for r in mine) == ["from a", "from b"]
    assert len({r["id"] for r in rows}) == len(rows)
    assert {r["id"] for r in mine} == set(ids)


def _articles(count: int) -> list[dict[str, str]]:
    """Distinct, long enough articles that their upload takes a while to embed (several batches)."""
    words = DEMO.read_text().split()
    out = []
    for i in range(count):
        pick = random.Random(i)
        paragraphs = [f"Report {i}. " + " ".join(pick.choice(words) for _ in range(120)) for _ in range(6)]
        out.append({"id": f"bulk-{i:03d}", "title": f"Bulk report {i}", "text": "\n\n".join(paragraphs),
                    "published_at": f"2023-{1 + i % 12:02d}-{1 + i % 28:02d}", "source": "Bulk Wire"})  # fmt: skip
    return out


def test_kill_9_of_a_during_an_upload_then_a_retry_through_b_loses_and_duplicates_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    from backend.services import build_lexical, build_registry, build_store

    articles = _articles(120)
    path = tmp_path / "bulk.jsonl"
    path.write_text("".join(json.dumps(a) + "\n" for a in articles))
    a, b = _a(cluster), _b(cluster)
    settings = _settings(cluster, tmp_path / "checker")
    registry = build_registry(settings)

    def stored() -> int:
        return len({i for i in registry.ids() if i.startswith("bulk-")})

    sending = threading.Thread(target=lambda: _upload_ignoring_death(a.url, path), daemon=True)
    sending.start()
    wait_for("the first batch of the upload stored", lambda: stored() > 0, limit_s=300)
    a.kill()
    partial = stored()
    assert partial < len(articles), "the upload finished before the kill: make the articles longer"
    sending.join(timeout=60)

    outcome = upload(b.url, path)
    assert outcome["errors"] == [], outcome
    assert outcome["new"] + outcome["unchanged"] == len(articles)

    records = registry.get(sorted(i for i in registry.ids() if i.startswith("bulk-")))
    assert sorted(records) == [x["id"] for x in articles]
    store = build_store(settings)
    lexical = build_lexical(settings)
    chunk_ids = store.ids()
    positions = list(store.chunk_index().values())
    assert len(positions) == len(set(positions)), "an article's passage is stored twice"
    assert lexical.ids() == set(chunk_ids), "the lexical index and the vectors describe different chunks"
    assert sum(r.chunks for r in registry.get(sorted(registry.ids())).values()) == len(chunk_ids)
    found = httpx.post(f"{b.url}/search", json={"query": "Bulk report 7", "k": 50}, timeout=30).json()
    assert len({h["chunk_id"] for h in found["results"]}) == len(found["results"])

    a.start()  # the rest of the module has its two replicas again
    assert httpx.get(f"{a.url}/archive", timeout=30).json()["articles"] == registry.count()


def _upload_ignoring_death(url: str, path: Path) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the replica is killed under it
        upload(url, path)


def test_postgresql_down_gives_503_with_retry_after_and_the_replicas_recover_alone(cluster: Cluster) -> None:
    assert cluster.postgres is not None
    question = {"question": "Who commands the Qaratapa-Hamrin sector?"}
    cluster.postgres.stop()
    try:
        for replica in cluster.servers:
            for path, body in (("/ask", question), ("/search", {"query": "Qaratapa-Hamrin", "k": 3})):
                down = httpx.post(f"{replica.url}{path}", json=body, timeout=60)
                assert down.status_code == 503, (replica.name, path, down.text)
                assert down.headers["content-type"].startswith("application/problem+json")
                assert int(down.headers["retry-after"]) > 0
                assert "database" in down.json()["detail"]
    finally:
        cluster.postgres.start()
    started = time.monotonic()
    for replica in cluster.servers:
        wait_for(
            f"replica {replica.name} answering again",
            lambda r=replica: httpx.post(f"{r.url}/ask", json=question, timeout=60).status_code == 200,
            limit_s=60,
        )
        assert replica.process is not None and replica.process.poll() is None, "the replica was restarted"
    assert time.monotonic() - started < 60
