"""The Streamlit chat under AppTest, talking over HTTP to a real API server started by the test."""

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import QARATAPA_QUESTION, free_port
from ui.render import escape_markdown, source_line

APP = str(Path(__file__).resolve().parents[2] / "ui" / "app.py")


def _app(monkeypatch: pytest.MonkeyPatch, api_url: str) -> AppTest:
    monkeypatch.setenv("BYLINE_API_URL", api_url)
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    assert not app.exception
    return app


@pytest.mark.integration
def test_a_question_gets_an_answer_with_its_sources(monkeypatch: pytest.MonkeyPatch, api_url: str) -> None:
    app = _app(monkeypatch, api_url)
    app.chat_input[0].set_value(QARATAPA_QUESTION).run()
    assert not app.exception
    texts = [m.value for m in app.markdown]
    assert any("Mardan Salih" in t for t in texts)
    assert any("Northern Dispatch" in t and "2023\\-10\\-04" in t and "\\[1\\]" in t for t in texts)
    assert app.session_state["session_id"]

    app.chat_input[0].set_value("What did he say about security?").run()
    assert sum("99 percent" in m.value for m in app.markdown) >= 1
    assert len(app.chat_message) == 4


@pytest.mark.integration
def test_server_down_shows_a_readable_error_and_the_app_stays_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    app = _app(monkeypatch, f"http://127.0.0.1:{free_port()}")
    app.chat_input[0].set_value("Anything?").run()
    assert not app.exception
    assert "Cannot reach the Byline server" in app.error[0].value
    app.button[0].click().run()  # New conversation
    assert not app.exception and len(app.chat_message) == 0


def test_archive_text_is_escaped_not_rendered() -> None:
    hostile = '<img src=x onerror="alert(1)"> ![p](https://example.org/p.png)'
    unescaped = re.compile(r"(?<!\\)[<>!\[\]()]")
    assert unescaped.search(escape_markdown(hostile)) is None
    line = source_line({"n": 2, "title": hostile, "url": "javascript:alert(1)", "source": None, "published_at": None})
    assert "javascript:" not in line and "unknown outlet" in line
    assert unescaped.search(line.removeprefix("**\\[2\\]**")) is None
