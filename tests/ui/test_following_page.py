"""The Following page under AppTest, against a real server that checks saved questions against new articles."""

from __future__ import annotations

import re
from datetime import date

import pytest
from streamlit.testing.v1 import AppTest

from backend.services import Services
from tests.backend.answering.test_watch import COMMANDER
from tests.conftest import QARATAPA_QUESTION, free_port
from tests.ui.conftest import HOSTILE, HOSTILE_QUESTION, HOSTILE_TAG, UNESCAPED, open_app, texts, wait_for
from ui.client import BylineClient

pytestmark = pytest.mark.integration

PAGE = "views/following.py"


def _following(monkeypatch: pytest.MonkeyPatch, api_url: str) -> AppTest:
    return open_app(monkeypatch, api_url, page=PAGE)


def _plain(markdown: str) -> str:
    """Escaped Markdown as the reader sees it."""
    return re.sub(r"\\(.)", r"\1", markdown)


def _nav_title(app: AppTest) -> str:
    """The navigation's label of the Following page (its unread badge)."""
    [title] = [p["page_name"] for p in app._registered_pages.values() if p.get("url_pathname") == "following"]
    return str(title)


def _badges(app: AppTest) -> list[str]:
    """Each watch's unread badge (``st.badge`` is Markdown to AppTest)."""
    return [t for t in texts(app) if t.startswith(":red-badge[:material/mark_email_unread:")]


def _watch_ids(url: str) -> list[str]:
    return [w["id"] for w in BylineClient(url).watches()["watches"]]


def _create(app: AppTest, question: str, **fields: object) -> AppTest:
    app.text_input(key="watch_question").set_value(question)
    for key, value in fields.items():
        getattr(app, {"watch_outlets": "multiselect", "watch_webhook": "text_input"}.get(key, "date_input"))(
            key=key
        ).set_value(value)
    app.button(key="watch_create").click().run()
    assert not app.exception
    return app


def test_a_question_is_followed_and_a_refused_one_shows_the_api_message(
    monkeypatch: pytest.MonkeyPatch, live_api: tuple[str, Services]
) -> None:
    url, _ = live_api
    app = _following(monkeypatch, url)
    assert "No saved questions yet." in texts(app, "caption") and _nav_title(app) == "Following"

    _create(app, QARATAPA_QUESTION, watch_after=date(2024, 1, 1))
    assert app.success[0].value.startswith("Following: Who commands the Qaratapa\\-Hamrin sector?")
    [watch_id] = _watch_ids(url)
    assert app.text_input(key="watch_question").value == ""  # the form is ready for the next one
    assert "1 saved question, 0 unread answers" in texts(app, "caption")
    assert any("published 2024\\-01\\-01 to …" in c for c in texts(app, "caption"))
    assert app.toggle(key=f"events-{watch_id}").value is False

    # A private webhook address is refused by the API (SSRF); its message is shown, the question kept.
    _create(app, "Who won the cup?", watch_webhook="http://10.1.2.3/hook")
    [error] = app.error
    said = _plain(error.value)
    assert said.startswith("The server refused the request (422): 10.1.2.3 resolves to") and "a private" in said
    assert app.text_input(key="watch_question").value == "Who won the cup?" and len(_watch_ids(url)) == 1
    _create(app, "Who won the cup?", watch_webhook="", watch_after=date(2024, 5, 1), watch_before=date(2024, 1, 1))
    assert "published_after must not be later than published_before" in _plain(app.error[0].value)
    assert len(_watch_ids(url)) == 1

    # A webhook's secret is shown once, when the watch is made.
    _create(app, "Who won the cup?", watch_webhook="http://127.0.0.1:9/hook", watch_after=None, watch_before=None)
    assert len(_watch_ids(url)) == 2 and re.fullmatch(r"[0-9a-f]{64}", app.code[0].value)
    app.run()
    assert not app.code


def test_an_answering_article_shows_as_unread_then_read_when_opened_and_a_watch_is_deleted(
    monkeypatch: pytest.MonkeyPatch, live_api: tuple[str, Services]
) -> None:
    url, _ = live_api
    api = BylineClient(url)
    watch = api.create_watch(QARATAPA_QUESTION)
    other = api.create_watch("Who won the Harbor City cup final?")
    api.add_articles([COMMANDER])
    wait_for("the event", lambda: api.watches()["unread"] == 1)

    app = _following(monkeypatch, url)
    assert _nav_title(app) == "Following (1)"
    assert "2 saved questions, 1 unread answer" in texts(app, "caption")
    assert _badges(app) == [":red-badge[:material/mark_email_unread: 1 unread]"]
    assert any(c.startswith("Saved ") and "· 1 answer · last " in c for c in texts(app, "caption"))

    app.toggle(key=f"events-{watch['id']}").set_value(True).run()
    assert not app.exception
    assert _nav_title(app) == "Following" and not _badges(app)
    assert api.watches()["unread"] == 0
    shown = texts(app)
    head = next(t for t in shown if t.startswith("**New article:**"))
    assert "[New commander for the Qaratapa\\-Hamrin sector](https://northern-dispatch.example/" in head
    assert head.endswith("Northern Dispatch, 2024\\-05\\-07 :red-badge[New]")
    [short] = [h for h in app.subheader if "Aram Dizayi" in h.value and not h.proto.anchor]
    assert re.search(r"\[\\\[\d\\\]\]\(#event-[0-9a-f]+-\d\)$", short.value)  # its [n] links to its card
    assert any("Aram Dizayi" in t and "#event-" in t for t in shown)  # the answer text
    card = next(h for h in app.subheader if h.proto.anchor.startswith("event-"))
    assert "New commander for the Qaratapa" in card.value
    assert any("**Qaratapa**" in t for t in shown)  # the card's snippet, the question's words in bold

    # Still marked new for the rest of the session, though read.
    app.run()
    assert any(t.endswith(":red-badge[New]") for t in texts(app))

    app.button(key=f"delete-{watch['id']}").click().run()
    assert not app.exception and _watch_ids(url) == [other["id"]]
    assert "1 saved question, 0 unread answers" in texts(app, "caption")
    assert not any(t.startswith("**New article:**") for t in texts(app))


def test_hostile_article_text_in_an_event_is_shown_as_text(
    monkeypatch: pytest.MonkeyPatch, live_api: tuple[str, Services]
) -> None:
    url, _ = live_api
    api = BylineClient(url)
    watch = api.create_watch(HOSTILE_QUESTION)
    api.add_articles([HOSTILE])
    wait_for("the event", lambda: api.watches()["unread"] == 1)
    app = _following(monkeypatch, url)
    app.toggle(key=f"events-{watch['id']}").set_value(True).run()
    assert not app.exception
    head = next(t for t in texts(app) if t.startswith("**New article:**"))
    assert "Clove harvest falls \\<img src\\=x" in head and "](" not in head  # javascript: URL, not a link
    shown = [str(e.value) for kind in ("markdown", "caption", "subheader", "warning") for e in getattr(app, kind)]
    assert sum("\\<img src\\=x onerror" in t for t in shown) >= 3  # the title, the answer, the card
    for text in shown:
        # The only Markdown left is the app's own: bold, badges, [n] links to cards, the card's :small[...].
        text = re.sub(r"^:small\[(.*)\]$", r"\1", text)
        text = re.sub(r"\[\\\[\d+\\\]\]\(#event-[0-9a-f]+-\d+\)", "", text)
        text = text.replace(":red-badge[New]", "")
        assert UNESCAPED.search(text) is None, text
    assert HOSTILE_TAG not in "".join(shown)


def test_a_server_that_cannot_be_reached_leaves_the_page_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    app = _following(monkeypatch, f"http://127.0.0.1:{free_port()}")
    assert "Cannot reach the Byline server" in app.error[0].value and _nav_title(app) == "Following"
    _create(app, "Anything?")
    assert any("Cannot reach the Byline server" in e.value for e in app.error)
