"""The Streamlit app under AppTest, talking over HTTP to real API servers started by the tests."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from backend.embedding import SentenceTransformerEmbedder
from backend.services import Services
from backend.settings import ApiSettings
from tests.conftest import QARATAPA_ID, QARATAPA_QUESTION, ServerThread, free_port
from tests.ui.conftest import HOSTILE_QUESTION, UNESCAPED, open_app, texts, writable_services

COOPERATION = "Peshmerga and Iraqi army cooperation"

pytestmark = pytest.mark.integration


def _app(monkeypatch: pytest.MonkeyPatch, api_url: str, api_key: str = "") -> AppTest:
    return open_app(monkeypatch, api_url, api_key)


def _ask(app: AppTest, question: str) -> AppTest:
    app.chat_input[0].set_value(question).run()
    assert not app.exception
    return app


_texts = texts


def _plain(markdown: str) -> str:
    """Escaped Markdown as the reader sees it."""
    return re.sub(r"\\(.)", r"\1", markdown)


def _card_lines(app: AppTest) -> list[str]:
    """The outlet/date caption of every source card: ``Outlet · YYYY\\-MM\\-DD``."""
    return [c for c in _texts(app, "caption") if re.search(r" · (\d{4}\\-\d\d\\-\d\d|undated)$", c)]


def test_a_question_streams_an_answer_with_numbered_source_cards(monkeypatch: pytest.MonkeyPatch, ui_api: str) -> None:
    app = _ask(_app(monkeypatch, ui_api), QARATAPA_QUESTION)
    answer = next(t for t in _texts(app) if "Mardan Salih" in t)
    # The [1] marker links to its card, whose subheader carries that anchor.
    assert "[\\[1\\]](#source-1-1)" in answer
    card = next(h for h in app.subheader if h.proto.anchor == "source-1-1")
    assert card.value.startswith(":small[\\[1\\] [Iraqi and Peshmerga officers")
    assert "(https://northern-dispatch.example/2023/10/qaratapa-hamrin-cooperation)" in card.value
    assert "Northern Dispatch · 2023\\-10\\-04" in _card_lines(app)
    # The snippet with the question's words in bold.
    assert any("**Qaratapa**" in t and "**sector**" in t and "Mardan Salih" in t for t in _texts(app))
    assert any(t.startswith("Searched for: *Who commands") for t in _texts(app, "caption"))
    session_id = app.session_state["session_id"]
    assert session_id and len(app.feedback) == 1

    _ask(app, "What did he say about security?")
    assert len(app.chat_message) == 4 and app.session_state["session_id"] == session_id
    assert any("99 percent" in t for t in _texts(app)[2:])
    # The follow-up was read with the name from the first answer, and the UI says so.
    assert any(t.startswith("Searched for:") and "Mardan Salih" in t for t in _texts(app, "caption"))
    assert "[\\[1\\]](#source-3-1)" in next(t for t in _texts(app) if "#source-3-" in t)


def test_a_card_opens_the_full_article(monkeypatch: pytest.MonkeyPatch, ui_api: str) -> None:
    app = _ask(_app(monkeypatch, ui_api), QARATAPA_QUESTION)
    assert not any("small cells" in t for t in _texts(app))
    app.toggle(key=f"full-{app.session_state['session_id']}-0-1").set_value(True).run()
    assert not app.exception
    # A sentence of the article that no snippet quotes.
    assert any("still move about in small cells" in t for t in _texts(app))


def test_thumbs_up_reaches_the_api(monkeypatch: pytest.MonkeyPatch, ui_api: str, ui_services: Services) -> None:
    app = _ask(_app(monkeypatch, ui_api), QARATAPA_QUESTION)
    session_id = app.session_state["session_id"]
    app.feedback(key=f"feedback-{session_id}-0").set_value(1).run()
    assert not app.exception
    assert "Thanks, your feedback was recorded\\." in _texts(app, "caption")
    [record] = [r for r in ui_services.feedback.export() if r["session_id"] == session_id]
    assert (record["rating"], record["turn"], record["question"]) == ("up", 0, QARATAPA_QUESTION)
    assert record["citations"][0]["article_id"] == QARATAPA_ID


def test_past_conversations_are_listed_and_reopen(monkeypatch: pytest.MonkeyPatch, ui_api: str) -> None:
    app = _ask(_app(monkeypatch, ui_api), QARATAPA_QUESTION)
    session_id = app.session_state["session_id"]
    listed = app.button(key=f"open-{session_id}")
    assert listed.label.startswith("Who commands the Qaratapa\\-Hamrin sector?") and listed.label.endswith("1 turn")

    app.button(key="new_conversation").click().run()
    assert len(app.chat_message) == 0 and app.session_state["session_id"] is None

    app.button(key=f"open-{session_id}").click().run()
    assert not app.exception and app.session_state["session_id"] == session_id
    assert len(app.chat_message) == 2
    assert any("Mardan Salih" in t and "#source-1-1" in t for t in _texts(app))
    assert "Northern Dispatch · 2023\\-10\\-04" in _card_lines(app)
    # The reopened conversation goes on: a follow-up is read in its context.
    _ask(app, "What did he say about security?")
    assert app.session_state["session_id"] == session_id and len(app.chat_message) == 4
    assert app.button(key=f"open-{session_id}").label.endswith("2 turns")


def test_sidebar_shows_the_archive_and_its_filters_narrow_answers(monkeypatch: pytest.MonkeyPatch, ui_api: str) -> None:
    app = _app(monkeypatch, ui_api)
    summary = next(t for t in _texts(app.sidebar, "caption") if "articles" in t)
    assert summary.startswith("25 articles") and "2023\\-04\\-20 to 2024\\-04\\-14" in summary
    outlets = app.multiselect(key="filter_outlets")
    assert {"Northern Dispatch", "Tigris Ledger", "Spice Wire"} <= set(outlets.options)

    outlets.set_value(["Tigris Ledger"]).run()
    _ask(app, COOPERATION)
    cards = _card_lines(app)
    assert cards and all(c.startswith("Tigris Ledger · ") for c in cards)

    app.button(key="new_conversation").click().run()
    app.multiselect(key="filter_outlets").set_value([]).run()
    app.date_input(key="filter_as_of").set_value(date(2023, 10, 3)).run()
    _ask(app, COOPERATION)
    cards = _card_lines(app)
    assert cards and all(c[-12:].replace("\\", "") <= "2023-10-03" for c in cards)
    assert any(t.endswith("as of 2023\\-10\\-03") for t in _texts(app, "caption"))

    app.button(key="new_conversation").click().run()
    app.date_input(key="filter_as_of").set_value(None).run()
    app.date_input(key="filter_after").set_value(date(2024, 1, 1)).run()
    _ask(app, COOPERATION)
    cards = _card_lines(app)
    assert cards and all(c[-12:].replace("\\", "") >= "2024-01-01" for c in cards)

    app.date_input(key="filter_before").set_value(date(2023, 6, 1)).run()
    assert "The start date is after the end date" in app.sidebar.warning[0].value


def test_hostile_archive_text_is_shown_escaped(monkeypatch: pytest.MonkeyPatch, ui_api: str) -> None:
    app = _ask(_app(monkeypatch, ui_api), HOSTILE_QUESTION)
    answer = next(t for t in _texts(app) if "Salim Juma" in t)
    assert (
        "\\<img src\\=x onerror\\=" in answer
        and "\\!\\[chart\\]\\(http\u2060\\://remote\\.example/x\\.png\\)" in answer
    )
    card = next(h for h in app.subheader if h.proto.anchor == "source-1-1")
    assert card.value.startswith(":small[\\[1\\] Clove harvest falls \\<img") and "](" not in card.value  # javascript:
    shown = [
        str(e.value)
        for m in app.chat_message
        for kind in ("markdown", "caption", "subheader")
        for e in getattr(m, kind)
    ]
    for text in shown:
        # The only Markdown left is what the app adds itself: links from [n] to its card, bold, italics.
        text = re.sub(r"^:small\[(.*)\]$", r"\1", text)
        # A source card's title links to its article's own http(s) address: the app's Markdown, too.
        text = re.sub(r"^(\\\[\d+\\\] )\[(.*)\]\(https?://[^\s()]+\)$", r"\1\2", text)
        assert UNESCAPED.search(re.sub(r"\[\\\[\d+\\\]\]\(#source-\d+-\d+\)", "", text)) is None, text
    app.toggle(key=f"full-{app.session_state['session_id']}-0-1").set_value(True).run()
    full = next(t for t in _texts(app) if "Exporters expect" in t)
    assert "\\<img src\\=x" in full and UNESCAPED.search(full) is None


def test_server_down_shows_a_readable_error_and_the_app_stays_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    app = _app(monkeypatch, f"http://127.0.0.1:{free_port()}")
    assert any("Cannot reach the Byline server" in t for t in _texts(app.sidebar, "caption"))
    _ask(app, "Anything?")
    assert "Cannot reach the Byline server" in app.error[0].value
    _ask(app, "Still there?")
    assert len(app.error) == 2 and len(app.chat_message) == 4
    app.button(key="new_conversation").click().run()
    assert not app.exception and len(app.chat_message) == 0


def test_a_missing_api_key_is_explained_and_the_sidebar_key_fixes_it(
    monkeypatch: pytest.MonkeyPatch, keyed_api: str
) -> None:
    app = _ask(_app(monkeypatch, keyed_api), QARATAPA_QUESTION)
    assert "needs a valid API key" in app.error[0].value and "sidebar" in app.error[0].value
    app.text_input(key="api_key_field").set_value("reader-key").run()
    _ask(app, QARATAPA_QUESTION)
    assert not app.exception and len(app.error) == 1  # the first one, kept in the history
    assert any("The archive has no article" in t for t in _texts(app))


def test_a_rate_limit_is_explained(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    # Two requests in the bucket: the first run's /archive and /sessions spend them.
    limited = writable_services(tmp_path / "data", embedder, rate=ApiSettings(rate_per_minute=1, rate_burst=2))
    with ServerThread(limited) as server:
        app = _ask(_app(monkeypatch, server.url), QARATAPA_QUESTION)
    assert re.fullmatch(r"Too many requests: the server asks to try again in \d+ seconds\.", _plain(app.error[0].value))


def test_an_api_address_that_is_not_one_is_explained(monkeypatch: pytest.MonkeyPatch, ui_api: str) -> None:
    app = _app(monkeypatch, ui_api)
    app.text_input(key="api_url_field").set_value("not an address").run()
    _ask(app, QARATAPA_QUESTION)
    assert "'not an address' is not a usable API address" in _plain(app.error[0].value)


def test_a_wire_story_card_names_the_other_outlets(monkeypatch: pytest.MonkeyPatch, ui_api: str) -> None:
    app = _ask(_app(monkeypatch, ui_api), "What did the Iraqi jets strike in the Hamrin mountains?")
    also = [t for t in _texts(app, "caption") + _texts(app) if t.startswith("Also in: ")]
    assert also and _plain(also[0]) in ("Also in: Harbor Post", "Also in: Meridian Wire")


def test_the_short_answer_stands_above_the_answer_with_its_confidence_and_outlets(
    monkeypatch: pytest.MonkeyPatch, short_api: str
) -> None:
    app = _ask(_app(monkeypatch, short_api), QARATAPA_QUESTION)
    answer = app.chat_message[1]
    # Large (a subheader, without a link icon), its [2] linked to the card of the citation that says it.
    [heading] = [h for h in answer.subheader if h.value.startswith("Nordstrom")]
    assert heading.value == "Nordstrom [\\[2\\]](#source-1-2)" and heading.proto.hide_anchor
    assert any(h.proto.anchor == "source-1-2" for h in answer.subheader)
    facts = next(c for c in answer.caption if "confidence" in c.value)
    assert facts.value == "80% confidence · 2 outlets agree" and facts.proto.help == "Outlet A, Outlet B"
    # Above the answer text, which is shown as before.
    order = [str(getattr(node, "value", "")) for node in answer]
    text = next(i for i, v in enumerate(order) if v.startswith("The archive has this"))
    assert order.index(heading.value) < order.index(facts.value) < text
    assert "The answer is Nordstrom [\\[2\\]](#source-1-2)\\." in order[text]
    assert not answer.warning


def test_a_short_answer_below_the_threshold_is_a_not_sure_note(
    monkeypatch: pytest.MonkeyPatch, unsure_api: str
) -> None:
    app = _ask(_app(monkeypatch, unsure_api), QARATAPA_QUESTION)
    answer = app.chat_message[1]
    assert not [h for h in answer.subheader if "Nordstrom" in h.value]  # not presented as the answer
    assert not any("confidence" in c.value for c in answer.caption)
    [note] = answer.warning
    assert _plain(note.value) == (
        "**Not sure.** The best guess from the archive is Nordstrom [[2]](#source-1-2), at 12% confidence,"
        " 1 outlet agrees. Check the sources before relying on it."
    )
    assert any(v.startswith("The archive has this") for v in _texts(answer))  # the answer and its cards stay
    assert any(h.proto.anchor == "source-1-2" for h in answer.subheader)
