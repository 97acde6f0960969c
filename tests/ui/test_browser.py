"""The chat in a real headless Chromium: `streamlit run` against a real API, driven by Playwright.

Uses Debian's /usr/bin/chromium (`make test` installs it); Playwright's own browser download is never
used. Every request the page makes is recorded, and any that would leave loopback is aborted and fails
the test. Set BYLINE_SCREENSHOT=docs/chat.png to refresh the README's screenshot, docs/following.png the
Following page's (both, separated by a comma).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from backend.services import Services
from tests.backend.answering.test_watch import COMMANDER
from tests.conftest import QARATAPA_QUESTION, ROOT, free_port, running
from tests.ui.conftest import HOSTILE, HOSTILE_IMAGE, HOSTILE_QUESTION, HOSTILE_TAG, wait_for
from ui.client import BylineClient

CHROMIUM = Path("/usr/bin/chromium")
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
# A watch's badge: its icon's ligature, then the count.
UNREAD = re.compile(r"^\W*(mark_email_unread)?\W*1 unread$")
pytestmark = [pytest.mark.slow, pytest.mark.integration]

if not CHROMIUM.exists():
    pytest.skip(
        "needs Debian's chromium at /usr/bin/chromium; `make test` installs it (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install '.[test]')")
expect = sync_api.expect


@contextmanager
def _streamlit(api_url: str, log: Path) -> Iterator[str]:
    """`streamlit run ui/app.py` on a free loopback port, talking to ``api_url``."""
    port = free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "ui" / "app.py"),
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]  # fmt: skip
    env = {**os.environ, "BYLINE_API_URL": api_url, "BYLINE_API_KEY": ""}
    url = f"http://127.0.0.1:{port}"
    with running(command, log, f"{url}/_stcore/health", "streamlit", 60, env=env, cwd=ROOT):
        yield url


@pytest.fixture(scope="module")
def ui_url(ui_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _streamlit(ui_api, tmp_path_factory.mktemp("streamlit") / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def short_ui_url(short_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The chat against an API whose answers have a short answer (``short_api``)."""
    with _streamlit(short_api, tmp_path_factory.mktemp("streamlit") / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


class Traffic:
    """Every URL the page asked for; requests that would leave loopback are aborted and listed."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.outside: list[str] = []

    def route(self, route: Any) -> None:
        url = route.request.url
        self.urls.append(url)
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about") or (parts.hostname or "") in LOOPBACK:
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def websocket(self, socket: Any) -> None:
        self.urls.append(socket.url)
        if (urlsplit(socket.url).hostname or "") not in LOOPBACK:
            self.outside.append(socket.url)


@contextmanager
def _page(browser: Any, url: str) -> Iterator[tuple[Any, Traffic]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    traffic = Traffic()
    context.route("**/*", traffic.route)
    page = context.new_page()
    page.on("websocket", traffic.websocket)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    yield page, traffic
    context.close()
    assert not traffic.outside, f"requests left loopback: {traffic.outside}"
    assert all((urlsplit(u).hostname or "") in LOOPBACK for u in traffic.urls if u.startswith(("http", "ws")))
    assert not errors, errors


@pytest.fixture
def page(browser: Any, ui_url: str) -> Iterator[tuple[Any, Traffic]]:
    with _page(browser, ui_url) as opened:
        yield opened


@pytest.fixture
def short_page(browser: Any, short_ui_url: str) -> Iterator[tuple[Any, Traffic]]:
    with _page(browser, short_ui_url) as opened:
        yield opened


# The scroll offset of whatever scrolls the element (Streamlit's main area, not the document), set first
# when a number is given.
SCROLL_TOP = """(element, top) => {
    let box = element.parentElement;
    while (box && !(box.scrollHeight > box.clientHeight && getComputedStyle(box).overflowY !== "visible")) {
        box = box.parentElement;
    }
    box = box || document.scrollingElement;
    if (top !== null) box.scrollTop = top;
    return box.scrollTop;
}"""


def _scroll_to_top(page: Any, element: Any) -> None:
    """Scroll up and wait until it stays there: the chat's stick-to-bottom may still be scrolling down."""
    for _ in range(40):
        element.evaluate(SCROLL_TOP, 0)
        page.wait_for_timeout(250)
        if element.evaluate(SCROLL_TOP, None) == 0:
            return
    raise AssertionError("the chat would not stay scrolled to the top")


def _screenshot(page: Any, tmp_path: Path, name: str) -> None:
    """A screenshot of the page, copied over docs/``name`` when BYLINE_SCREENSHOT names that file."""
    shot = tmp_path / name
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    for target in os.environ.get("BYLINE_SCREENSHOT", "").split(","):
        if target.strip() and Path(target.strip()).name == name:
            shutil.copyfile(shot, ROOT / target.strip())


def _ask(page: Any, question: str) -> None:
    box = page.get_by_placeholder("Ask a question about the news")
    box.fill(question)
    box.press("Enter")


def test_ask_read_the_source_and_give_feedback(
    page: tuple[Any, Traffic], ui_services: Services, tmp_path: Path
) -> None:
    tab, traffic = page
    _ask(tab, QARATAPA_QUESTION)
    card = tab.locator("#source-1-1")
    expect(card).to_contain_text("Iraqi and Peshmerga officers", timeout=90_000)
    answer = tab.get_by_test_id("stChatMessage").nth(1)
    expect(answer).to_contain_text("Mardan Salih")
    # Whether the browser paints an intermediate state of the stream depends on timing (the extractive
    # answer streams in a few milliseconds), so the stream itself is asserted where it is deterministic:
    # tests/ui/test_client.py (the events from a real server, in order) and the AppTest chat flow.
    expect(answer).to_contain_text("Northern Dispatch · 2023-10-04")
    link = answer.locator('a[href="https://northern-dispatch.example/2023/10/qaratapa-hamrin-cooperation"]')
    expect(link).to_have_count(1)

    # Clicking a [1] marker brings its card into view: on a short window scrolled to the top, the page
    # has to scroll down to it.
    tab.set_viewport_size({"width": 1280, "height": 480})
    _scroll_to_top(tab, card)
    answer.locator('a[href="#source-1-1"]').first.click()
    expect(card).to_be_in_viewport(ratio=1)
    box = card.bounding_box()
    assert box is not None and box["y"] < 240  # scrolled up to, not merely peeking in
    assert card.evaluate(SCROLL_TOP, None) > 0
    assert tab.evaluate("location.hash") == "#source-1-1"
    tab.set_viewport_size({"width": 1280, "height": 900})

    # The card opens the full article.
    answer.get_by_text("Full article").first.click()
    expect(answer).to_contain_text("still move about in small cells", timeout=30_000)

    # Thumbs up reaches the API's feedback store.
    before = len(list(ui_services.feedback.export()))
    answer.get_by_role("radio", name="Thumbs up").click()
    expect(answer).to_contain_text("Thanks, your feedback was recorded.", timeout=30_000)
    records = list(ui_services.feedback.export())
    assert len(records) == before + 1
    assert (records[-1]["rating"], records[-1]["question"]) == ("up", QARATAPA_QUESTION)

    # The conversation is listed in the sidebar.
    expect(tab.get_by_test_id("stSidebar")).to_contain_text("Who commands the Qaratapa-Hamrin sector? · 1 turn")

    _scroll_to_top(tab, card)
    _screenshot(tab, tmp_path, "chat.png")
    assert any(u.endswith("/_stcore/stream") for u in traffic.urls)


def test_hostile_archive_text_renders_as_text_and_fetches_nothing(page: tuple[Any, Traffic]) -> None:
    tab, traffic = page
    _ask(tab, HOSTILE_QUESTION)
    card = tab.locator("#source-1-1")
    expect(card).to_contain_text("Clove harvest falls", timeout=90_000)
    answer = tab.get_by_test_id("stChatMessage").nth(1)
    expect(answer).to_contain_text("Salim Juma")
    answer.get_by_text("Full article").first.click()
    expect(answer).to_contain_text("Exporters expect prices", timeout=30_000)
    tab.wait_for_timeout(500)  # any image the page would load has been asked for by now

    text = answer.inner_text().replace("\u2060", "")
    # The tag and the Markdown image are on the page as the characters the article holds: in the
    # answer, the card's title, its snippet and the full text.
    assert text.count(HOSTILE_TAG) >= 3 and text.count(HOSTILE_IMAGE) >= 3
    assert tab.locator('img[src="x"], img[src*="remote.example"]').count() == 0
    assert answer.locator("img").count() == 0
    assert answer.locator('a[href*="remote.example"], a[href^="javascript"]').count() == 0
    assert tab.title() != "pwned"
    assert not [u for u in traffic.urls if "remote.example" in u]


def test_the_short_answer_is_shown_large_above_the_answer(short_page: tuple[Any, Traffic]) -> None:
    tab, _ = short_page
    _ask(tab, QARATAPA_QUESTION)
    answer = tab.get_by_test_id("stChatMessage").nth(1)
    expect(answer.locator("#source-1-2")).to_have_count(1, timeout=90_000)
    heading = answer.get_by_role("heading", name="Nordstrom [2]")
    expect(heading).to_have_count(1)
    expect(answer).to_contain_text("80% confidence · 2 outlets agree")
    expect(answer).not_to_contain_text("Not sure")
    # Larger than the answer text, and above it.
    text = answer.get_by_text("The archive has this")
    size = "element => parseFloat(getComputedStyle(element).fontSize)"
    assert heading.evaluate(size) > text.evaluate(size)
    heading_box, text_box = heading.bounding_box(), text.bounding_box()
    assert heading_box is not None and text_box is not None and heading_box["y"] < text_box["y"]
    # Its [2] is a link to the card of the citation that says it.
    heading.locator('a[href="#source-1-2"]').click()
    assert tab.evaluate("location.hash") == "#source-1-2"
    expect(answer.locator("#source-1-2")).to_be_in_viewport()


def test_the_following_page_shows_new_answers_with_badges_and_hostile_text_as_text(
    browser: Any, live_api: tuple[str, Services], tmp_path: Path
) -> None:
    api_url, _ = live_api
    api = BylineClient(api_url)
    hostile = api.create_watch(HOSTILE_QUESTION)
    with _streamlit(api_url, tmp_path / "streamlit.log") as ui, _page(browser, f"{ui}/following") as (tab, _):
        nav = tab.get_by_test_id("stSidebarNav")
        expect(tab.get_by_text("Who chairs the Pemba clove growers cooperative?")).to_be_visible(timeout=60_000)
        tab.get_by_text("Follow a new question").click()
        tab.get_by_label("Question").fill(QARATAPA_QUESTION)
        tab.get_by_role("button", name="Follow this question").click()
        expect(tab.get_by_text(f"Following: {QARATAPA_QUESTION}")).to_be_visible(timeout=30_000)
        expect(tab.get_by_text("2 saved questions, 0 unread answers")).to_be_visible()
        expect(nav.get_by_text("Following", exact=True)).to_be_visible()

        api.add_articles([COMMANDER, HOSTILE])
        wait_for("two events", lambda: api.watches()["unread"] == 2)
        tab.reload()
        expect(nav.get_by_text("Following (2)", exact=True)).to_be_visible(timeout=60_000)
        expect(tab.get_by_text("2 saved questions, 2 unread answers")).to_be_visible()
        expect(tab.get_by_text(UNREAD)).to_have_count(2)

        # The newest watch first: opening its answers shows the short answer and its citation, and reads it.
        tab.get_by_text("Show answers").first.click()
        expect(tab.get_by_role("heading", name=re.compile(r"Aram Dizayi.*\[\d\]"))).to_be_visible(timeout=60_000)
        card = tab.locator("[id^=event-]").filter(has_text="New commander for the Qaratapa-Hamrin sector").first
        expect(card).to_be_visible()
        link = tab.locator(f'a[href="{COMMANDER["url"]}"]')
        expect(link.first).to_be_visible()
        expect(nav.get_by_text("Following (1)", exact=True)).to_be_visible(timeout=30_000)
        expect(tab.get_by_text(UNREAD)).to_have_count(1)
        assert api.watch_events(hostile["id"], unread=True)
        _screenshot(tab, tmp_path, "following.png")

        tab.get_by_text("Show answers").nth(1).click()
        expect(nav.get_by_text("Following", exact=True)).to_be_visible(timeout=60_000)
        expect(tab.get_by_text("Exporters expect prices").or_(tab.get_by_text("Salim Juma")).first).to_be_visible()
        tab.wait_for_timeout(500)  # any image the page would load has been asked for by now
        text = tab.get_by_test_id("stMain").inner_text().replace("\u2060", "")
        assert text.count(HOSTILE_TAG) >= 3 and text.count(HOSTILE_IMAGE) >= 3
        assert tab.locator('img[src="x"], img[src*="remote.example"]').count() == 0
        assert tab.locator('a[href*="remote.example"], a[href^="javascript"]').count() == 0
        assert tab.title() != "pwned"
        assert api.watches()["unread"] == 0
