"""What the pages share: the API connection (sidebar settings), the archive summary, full article text, and
how an answer's short answer and source cards are drawn (the chat's answers and the Following page's events)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import streamlit as st

from ui.client import ApiError, BylineClient
from ui.render import (
    also_in_line,
    archive_line,
    card_heading,
    day,
    escape_markdown,
    escape_paragraphs,
    highlight,
    not_sure_note,
    short_answer_facts,
    short_answer_heading,
    short_answer_outlets,
    title_link,
)

DEFAULT_API_URL = "http://127.0.0.1:8000"


def init_connection() -> None:
    """Seed the connection settings from the environment once, before any page builds a client."""
    st.session_state.setdefault("api_url", os.environ.get("BYLINE_API_URL", DEFAULT_API_URL))
    st.session_state.setdefault("api_key", os.environ.get("BYLINE_API_KEY", ""))


def connection_settings() -> None:
    """The sidebar fields. They write to plain state keys, which outlive a page switch (a widget's own
    key is dropped on a page that does not draw it)."""
    state = st.session_state
    with st.sidebar.expander("Connection"):
        help_url = "Where `byline serve` listens (BYLINE_API_URL)."
        st.text_input(
            "API address", state.api_url, key="api_url_field", help=help_url, on_change=_keep, args=("api_url",)
        )
        help_key = "Needed when the server sets BYLINE_API_KEYS (BYLINE_API_KEY)."
        st.text_input(
            "API key",
            state.api_key,
            key="api_key_field",
            type="password",
            help=help_key,
            on_change=_keep,
            args=("api_key",),
        )


def _keep(name: str) -> None:
    st.session_state[name] = st.session_state[f"{name}_field"]


def client() -> BylineClient:
    init_connection()
    return BylineClient(st.session_state["api_url"], st.session_state["api_key"] or None)


# Cached briefly: the sidebar reads it on every rerun, and it changes only when something is ingested.
@st.cache_data(ttl=60, show_spinner=False)
def _archive(api_url: str, api_key: str) -> dict[str, Any]:
    return BylineClient(api_url, api_key or None).archive()


@st.cache_data(ttl=600, show_spinner=False, max_entries=200)
def _article(api_url: str, api_key: str, article_id: str) -> dict[str, Any]:
    return BylineClient(api_url, api_key or None).article(article_id)


# Cached longer: a server reads the same formats until it is restarted.
@st.cache_data(ttl=600, show_spinner=False)
def _formats(api_url: str, api_key: str) -> dict[str, Any]:
    return BylineClient(api_url, api_key or None).formats()


def _fetched(fetch: Callable[[str, str], dict[str, Any]], missing: str) -> dict[str, Any] | None:
    init_connection()
    try:
        return fetch(st.session_state["api_url"], st.session_state["api_key"])
    except ApiError as exc:
        st.caption(f"{missing}: {escape_markdown(str(exc))}")
        return None


def archive() -> dict[str, Any] | None:
    """The archive's counts, date range and outlets, or None after showing why they are missing."""
    return _fetched(_archive, "Archive unavailable")


def upload_formats() -> dict[str, Any] | None:
    """The formats the server reads (labels and suffixes), or None after showing why they are missing."""
    return _fetched(_formats, "The server did not say which files it reads")


def forget_archive() -> None:
    """After an ingest the counts and outlets are stale."""
    _archive.clear()
    _article.clear()


def unread_answers() -> int:
    """Unread events over the caller's saved questions, for the navigation's badge; 0 when the server does not
    say (a page shows why when it asks for itself). Not cached: a reload must show what arrived meanwhile."""
    init_connection()
    try:
        return int(
            BylineClient(st.session_state["api_url"], st.session_state["api_key"] or None, timeout=5).watches()[
                "unread"
            ]
        )
    except (ApiError, KeyError, TypeError, ValueError):
        return 0


def show_archive_summary(summary: dict[str, Any] | None) -> None:
    if summary is not None:
        st.caption(archive_line(summary))


def show_article(article_id: str) -> None:
    """The full text behind a citation, as text; fetched when asked for, then cached."""
    init_connection()
    try:
        article = _article(st.session_state["api_url"], st.session_state["api_key"], article_id)
    except ApiError as exc:
        st.error(escape_markdown(str(exc)))
        return
    st.markdown(f"**{title_link(article)}**")
    copies = [c.get("source") for c in article.get("copies") or [] if c.get("source")]
    if copies:
        st.caption("Copies also carried by: " + ", ".join(escape_markdown(s) for s in copies))
    st.markdown(escape_paragraphs(article.get("text") or ""))


def show_card(citation: dict[str, Any], anchor: str, terms: frozenset[str], key: str) -> None:
    with st.container(border=True):
        # A subheader is the one element whose id we choose, so the [n] link can jump to it.
        st.subheader(card_heading(citation), anchor=anchor)
        outlet = escape_markdown(citation.get("source") or "unknown outlet")
        st.caption(f"{outlet} · {escape_markdown(day(citation.get('published_at')))}")
        if also := also_in_line(citation):
            st.caption(also)
        if citation.get("snippet"):
            st.markdown(highlight(citation["snippet"], terms))
        if st.toggle("Full article", key=f"full-{key}") and citation.get("article_id"):
            show_article(citation["article_id"])


def show_short_answer(short: dict[str, Any], anchors: dict[int, str]) -> None:
    """The answer in a few words above the text, large; a guess below the server's threshold (``sure``
    false) is a note saying so instead."""
    if short.get("sure") is not True:
        st.warning(not_sure_note(short, anchors), icon=":material/help:")
        return
    # No anchor: the heading is not a place to link to, and Streamlit would add a link icon to it.
    st.subheader(short_answer_heading(short, anchors), anchor=False)
    outlets = ", ".join(short_answer_outlets(short))
    st.caption(short_answer_facts(short), help=escape_markdown(outlets) if outlets else None)
