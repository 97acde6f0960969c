"""Archive text reaches Streamlit's Markdown only escaped; the app's own Markdown is links and bold."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from ui.render import (
    also_in_line,
    archive_line,
    escape_markdown,
    escape_paragraphs,
    highlight,
    link_markers,
    not_sure_note,
    percent,
    query_terms,
    reading_line,
    safe_url,
    short_answer_facts,
    short_answer_heading,
    source_line,
    title_link,
)

HOSTILE = '<img src=x onerror="alert(1)"> ![p](https://example.org/p.png) :red[alarm] <script>x</script>'
# A character Markdown, HTML or a Streamlit directive would act on, not escaped by a backslash.
UNESCAPED = re.compile(r"(?<!\\)[<>!\[\]():*_`]")


def _unescaped(markdown: str) -> list[str]:
    """Characters left active, with escaped pairs (``\\\\``) consumed first so ``\\\\<`` counts as active."""
    return UNESCAPED.findall(re.sub(r"\\\\", "", markdown))


@given(st.text())
def test_any_text_escapes_to_inert_markdown(text: str) -> None:
    assert _unescaped(escape_markdown(text)) == []
    assert _unescaped(escape_paragraphs(text)) == []


@given(st.text(), st.lists(st.text(min_size=1), max_size=5))
def test_highlighting_adds_only_bold(text: str, words: list[str]) -> None:
    marked = highlight(text, words)
    assert _unescaped(marked.replace("**", "")) == []
    shown = re.sub(r"\\(.)", r"\1", marked.replace("**", ""))
    assert shown.replace("\u2060", "") == text.replace("\u2060", "")


def test_bare_web_addresses_do_not_become_links() -> None:
    # GitHub-flavoured Markdown links these even escaped; a word joiner after the scheme stops it.
    assert escape_markdown("see http://a.example/x and www.b.example") == (
        "see http\u2060\\://a\\.example/x and www\u2060\\.b\\.example"
    )


def test_highlight_bolds_the_question_words_whatever_their_case() -> None:
    terms = query_terms("Who commands the Qaratapa-Hamrin sector?")
    assert terms == {"commands", "qaratapa", "hamrin", "sector"}
    marked = highlight("The QARATAPA sector <b>is</b> calm.", terms)
    assert marked == "The **QARATAPA** **sector** \\<b\\>is\\</b\\> calm\\."


def test_markers_link_to_their_cards_and_nothing_else() -> None:
    escaped = escape_markdown("Salih commands it [1]. A claim [2]. Not a marker [x] or [](javascript:x).")
    linked = link_markers(escaped, {1: "source-3-1"})
    assert "[\\[1\\]](#source-3-1)" in linked
    assert "\\[2\\]" in linked and "(#source-3-2)" not in linked  # no card 2, no link
    assert _unescaped(linked.replace("[\\[1\\]](#source-3-1)", "")) == []


def test_only_web_addresses_become_links() -> None:
    assert safe_url("javascript:alert(1)") is None
    assert safe_url("data:text/html,<script>x</script>") is None
    assert safe_url("//evil.example/x") is None
    assert safe_url("https:no-host") is None
    assert safe_url(" https://a.example/x y)(<z> ") == "https://a.example/x%20y%29%28%3Cz%3E"
    assert title_link({"title": "T", "url": "vbscript:x"}) == "T"
    assert title_link({"title": "T [1]", "url": "https://a.example/"}) == "[T \\[1\\]](https://a.example/)"


def test_source_line_escapes_every_field() -> None:
    line = source_line({"n": 2, "title": HOSTILE, "url": "javascript:alert(1)", "source": None, "published_at": None})
    assert line.startswith("**\\[2\\]** \\<img") and line.endswith("— unknown outlet, undated")
    assert _unescaped(line.removeprefix("**").replace("\\]**", "\\]")) == []
    dated = source_line({"n": 1, "title": "T", "source": "Tigris Ledger", "published_at": "2023-10-04T00:00:00Z"})
    assert dated.endswith("— Tigris Ledger, 2023\\-10\\-04")


def test_reading_line_says_how_the_question_was_read() -> None:
    reply = {
        "rewritten_query": "What did Mardan Salih say about security?",
        "as_of": "2024-01-31",
        "reading": {
            "window": {"start": "2023-10-01", "end": "2023-10-31", "phrase": "in October"},
            "sources": ["Northern Dispatch"],
            "source_phrase": "according to Northern Dispatch",
        },
    }
    line = re.sub(r"\\(.)", r"\1", reading_line(reply))
    assert line == (
        "Searched for: *What did Mardan Salih say about security?* · dates 2023-10-01 to 2023-10-31"
        " (from “in October”) · outlets Northern Dispatch · as of 2024-01-31"
    )
    assert reading_line({"rewritten_query": "q", "reading": {"window": {"start": None, "end": "2023-01-02"}}}) == (
        "Searched for: *q* · dates … to 2023\\-01\\-02"
    )


def test_also_in_names_the_other_outlets_escaped() -> None:
    assert also_in_line({"also_in": ["Harbor Post", "<b>X</b>"]}) == "Also in: Harbor Post, \\<b\\>X\\</b\\>"
    assert also_in_line({"also_in": []}) is None and also_in_line({}) is None


def test_archive_line() -> None:
    archive = {
        "articles": 1234,
        "chunks": 5678,
        "first_published": "2023-04-20T00:00:00Z",
        "last_published": "2024-04-14T00:00:00Z",
        "outlets": [{"name": "A", "articles": 1}, {"name": "B", "articles": 2}],
    }
    assert re.sub(r"\\(.)", r"\1", archive_line({**archive, "articles": 1, "chunks": 1})).startswith(
        "1 article (1 passage) from 2 outlets"
    )
    assert re.sub(r"\\(.)", r"\1", archive_line(archive)) == (
        "1,234 articles (5,678 passages) from 2 outlets, 2023-04-20 to 2024-04-14"
    )


def test_the_short_answer_heading_links_only_its_own_marker() -> None:
    anchors = {2: "source-1-2", 3: "source-1-3"}
    assert short_answer_heading({"text": "Nordstrom", "n": 2}, anchors) == "Nordstrom [\\[2\\]](#source-1-2)"
    hostile = short_answer_heading({"text": f"{HOSTILE} [3]", "n": 2}, anchors)
    assert hostile.endswith(" [\\[2\\]](#source-1-2)") and "(#source-1-3)" not in hostile  # [3] is archive text
    assert _unescaped(hostile.removesuffix("[\\[2\\]](#source-1-2)")) == []
    assert short_answer_heading({"text": "Nordstrom", "n": 9}, anchors) == "Nordstrom \\[9\\]"  # no card, no link


def test_short_answer_facts_say_the_confidence_and_how_many_outlets_agree() -> None:
    two = {"confidence": 0.8, "outlets": ["Outlet A", "Outlet B", "Outlet A", ""]}
    assert short_answer_facts(two) == "80% confidence · 2 outlets agree"  # distinct, named outlets
    assert short_answer_facts({"confidence": 0.345, "outlets": ["Outlet A"]}) == "34% confidence · 1 outlet agrees"
    assert short_answer_facts({"confidence": 0.5, "outlets": []}) == "50% confidence"
    assert (percent(0.0), percent(0.999), percent(1.7), percent(-0.2)) == ("0%", "100%", "100%", "0%")


def test_the_not_sure_note_is_inert_apart_from_its_marker_and_bold() -> None:
    short = {"text": HOSTILE, "n": 1, "confidence": 0.1, "outlets": ["<b>X</b>"]}
    note = not_sure_note(short, {1: "source-0-1"})
    assert note.startswith("**Not sure.** The best guess from the archive is \\<img")
    assert "at 10% confidence, 1 outlet agrees\\. Check the sources" in note
    assert _unescaped(note.replace("**Not sure.**", "").replace("[\\[1\\]](#source-0-1)", "")) == []
