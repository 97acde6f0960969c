"""The archive page under AppTest: browse, search and upload through real API servers."""

from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from backend.services import Services
from ingest.loaders import FORMATS, suffixes
from tests.conftest import DEMO, ServerThread
from tests.follow.servers import RSS, Item, Site, rss
from tests.ui.conftest import HOSTILE_ID, UNESCAPED, open_app, texts, wait_for
from tests.ui.test_client import STORY
from ui.client import BylineClient
from ui.render import escape_markdown

pytestmark = pytest.mark.integration


def _archive_page(monkeypatch: pytest.MonkeyPatch, api_url: str, api_key: str = "") -> AppTest:
    return open_app(monkeypatch, api_url, api_key, page="views/archive.py")


_texts = texts


def test_browsing_lists_filters_and_opens_articles(monkeypatch: pytest.MonkeyPatch, ui_api: str) -> None:
    app = _archive_page(monkeypatch, ui_api)
    assert "25 articles; showing 1 to 20" in _texts(app, "caption")
    app.button(key="browse_next").click().run()
    assert "25 articles; showing 21 to 25" in _texts(app, "caption")

    app.text_input(key="browse_q").set_value("clove").run()
    assert "1 article; showing 1 to 1" in _texts(app, "caption")
    [title] = [t for t in _texts(app) if "Clove harvest" in t]
    assert UNESCAPED.search(title) is None and "](" not in title  # javascript: URL, not a link
    app.toggle(key=f"read-{HOSTILE_ID}").set_value(True).run()
    full = next(t for t in _texts(app) if "Exporters expect prices" in t)
    assert "\\<img src\\=x" in full and UNESCAPED.search(full) is None

    app.text_input(key="browse_q").set_value("").run()
    app.selectbox(key="browse_source").set_value("Tigris Ledger").run()
    outlets = [c for c in _texts(app, "caption") if " · id " in c]
    assert outlets and all(c.startswith("Tigris Ledger · ") for c in outlets)


def test_search_shows_passages_with_the_query_words_in_bold(monkeypatch: pytest.MonkeyPatch, ui_api: str) -> None:
    app = _archive_page(monkeypatch, ui_api)
    app.text_input(key="search_q").set_value("Qaratapa commander").run()
    assert not app.exception
    assert "10 passages, best first" in _texts(app, "caption")
    passage = next(t for t in _texts(app) if "Mardan Salih" in t)
    assert "**Qaratapa**" in passage and "**commander**" in passage
    # A wire story shows once, naming the other outlet that carried it.
    app.text_input(key="search_q").set_value("Iraqi jets strike militant hideouts in Hamrin mountains").run()
    assert "Also in: Harbor Post" in _texts(app, "caption")


def test_uploaded_files_are_ingested_with_a_result_per_file(
    monkeypatch: pytest.MonkeyPatch, empty_api: tuple[str, Services]
) -> None:
    api_url, services = empty_api
    app = _archive_page(monkeypatch, api_url)
    demo = DEMO.read_text(encoding="utf-8").splitlines()
    record = json.loads(demo[0])
    csv = "title,text,date,source\nGrain prices,Wheat prices rose in Basra markets.,2024-02-01,Gulf Post\n"
    app.file_uploader(key="upload_files").set_value(
        [
            ("three.jsonl", ("\n".join(demo[:3]) + "\n").encode(), "application/jsonl"),
            ("prices.csv", csv.encode(), "text/csv"),
            ("broken.jsonl", b'{"title": "no text"}\n' + json.dumps(record).encode() + b"\n", "application/jsonl"),
        ]
    ).run()
    app.button(key="ingest").click().run()
    assert not app.exception
    assert app.get("progress")[0].proto.text == "3 files done"
    results = [s.value for s in app.success] + [w.value for w in app.warning]
    assert "**three\\.jsonl**: 3 records read; 3 new, 0 updated, 0 unchanged, 0 copies" in results
    assert "**prices\\.csv**: 1 record read; 1 new, 0 updated, 0 unchanged, 0 copies" in results
    broken = next(w.value for w in app.warning if "broken" in w.value)
    assert "1 unchanged" in broken and broken.endswith("1 not ingested")
    assert any("broken\\.jsonl" in c and "text" in c for c in _texts(app, "caption"))
    assert services.registry.span()[0] == 4
    # The archive summary is read again after an upload.
    assert any(c.startswith("4 articles") for c in _texts(app, "caption"))


def test_an_upload_without_an_admin_key_is_refused_readably(monkeypatch: pytest.MonkeyPatch, keyed_api: str) -> None:
    app = _archive_page(monkeypatch, keyed_api, api_key="reader-key")
    app.file_uploader(key="upload_files").set_value(("a.txt", b"A title\n\nSome text.", "text/plain")).run()
    app.button(key="ingest").click().run()
    assert not app.exception
    assert "not allowed" in app.error[0].value and "admin key" in app.error[0].value


def test_the_upload_picker_offers_exactly_the_suffixes_the_server_reads(
    monkeypatch: pytest.MonkeyPatch, ui_api: str
) -> None:
    app = _archive_page(monkeypatch, ui_api)
    picker = app.file_uploader(key="upload_files")
    assert list(picker.proto.type) == list(suffixes())
    assert {".text", ".markdown", ".ndjson", ".xml"} <= set(picker.proto.type)
    labels = ", ".join(escape_markdown(f.label) for f in FORMATS.values())
    assert f"{labels}; each file is read by its suffix." in _texts(app, "caption")


def test_a_read_only_server_leaves_the_picker_open_and_says_why(
    monkeypatch: pytest.MonkeyPatch, demo_services: Services
) -> None:
    with ServerThread(demo_services) as read_only:
        app = _archive_page(monkeypatch, read_only.url)
    assert not app.file_uploader(key="upload_files").proto.type  # any file; the server reports what it refuses
    said = [c for c in _texts(app, "caption") if c.startswith("The server did not say which files it reads")]
    assert said and "started read\\-only" in said[0]


def test_sources_are_followed_with_their_health_refused_readably_and_unfollowed(
    monkeypatch: pytest.MonkeyPatch, live_api: tuple[str, Services]
) -> None:
    url, _ = live_api
    app = _archive_page(monkeypatch, url)
    assert "No followed sources yet." in _texts(app, "caption")
    with Site() as site:
        content = "".join(f"<p>{p}</p>" for p in STORY)
        site.route(
            "/feed.xml", rss([Item("Berth 1 works", site.url("/news/1"), "g1", content=content)]), content_type=RSS
        )
        app.text_input(key="feed_url").set_value(site.url("/feed.xml"))
        app.text_input(key="feed_title").set_value("Harbor Post")
        app.number_input(key="feed_interval").set_value(600)
        app.button(key="feed_follow").click().run()
        assert not app.exception and not app.error
        assert app.success[0].value.startswith("Following http\u2060\\://127\\.0\\.0\\.1\\:")
        assert app.text_input(key="feed_url").value == ""
        wait_for("the first poll", lambda: BylineClient(url).feeds()[0]["health"]["status"] == "ok")
        app.button(key="feeds_refresh").click().run()
    [row] = app.dataframe[0].value.to_dict("records")
    assert (row["Source"], row["Address"], row["Kind"], row["Status"]) == (
        "Harbor Post",
        site.url("/feed.xml"),
        "rss",
        "ok (HTTP 200)",
    )
    assert (row["New"], row["Total"], row["Failures"], row["Every"], row["Last error"]) == (1, 1, 0, "10 min", "")
    assert "1 source" in _texts(app, "caption")

    # Refusals read as the API's message: followed already, and a private address (SSRF).
    app.text_input(key="feed_url").set_value(site.url("/feed.xml"))
    app.button(key="feed_follow").click().run()
    assert "is followed already" in app.error[0].value
    app.text_input(key="feed_url").set_value("http://10.1.2.3/feed.xml")
    app.button(key="feed_follow").click().run()
    assert not app.exception
    said = re.sub(r"\\(.)", r"\1", app.error[0].value)
    assert said.startswith("The server refused the request (422): 10.1.2.3 resolves to") and "a private" in said
    assert len(app.dataframe[0].value) == 1

    app.button(key="feed_unfollow").click().run()
    assert not app.exception and not app.dataframe
    assert "No followed sources yet." in _texts(app, "caption")
    assert BylineClient(url).feeds() == []


def test_following_a_source_without_an_admin_key_is_refused_readably(
    monkeypatch: pytest.MonkeyPatch, keyed_api: str
) -> None:
    app = _archive_page(monkeypatch, keyed_api, api_key="reader-key")
    app.text_input(key="feed_url").set_value("https://news.example/rss.xml")
    app.button(key="feed_follow").click().run()
    assert not app.exception
    assert "not allowed" in app.error[0].value and "admin key" in app.error[0].value
