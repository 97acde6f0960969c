"""The archive page: browse and search what is stored, add files to it, and follow sources that keep it current.

Uploads go one file per request, so the progress bar moves per file and one bad file cannot take the
others' results with it. Followed sources are polled by the server; the page shows each one's health.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from ui.client import ApiError
from ui.common import (
    archive,
    client,
    connection_settings,
    forget_archive,
    show_archive_summary,
    show_article,
    upload_formats,
)
from ui.render import also_in_line, count, day, escape_markdown, highlight, query_terms, title_link

# What a source's last poll says, for people.
STATUS = {"pending": "not polled yet", "ok": "ok", "not_modified": "ok, unchanged (304)", "error": "failing"}

PAGE_SIZE = 20
state = st.session_state
state.setdefault("browse_offset", 0)


def reset_browsing() -> None:
    state.browse_offset = 0


def upload(files: list[Any]) -> list[dict[str, Any]]:
    progress = st.progress(0.0, text="Starting…")
    results: list[dict[str, Any]] = []
    for done, file in enumerate(files):
        progress.progress(done / len(files), text=f"Ingesting {file.name} ({done + 1} of {len(files)})")
        try:
            results.extend(client().upload([(file.name, file.getvalue())]))
        except ApiError as exc:
            results.append({"name": file.name, "errors": [str(exc)], "refused": True})
    progress.progress(1.0, text=f"{count(len(files), 'file')} done")
    forget_archive()
    return results


def show_upload_results(results: list[dict[str, Any]]) -> None:
    for result in results:
        name = escape_markdown(str(result.get("name", "upload")))
        errors = [str(e) for e in result.get("errors") or []]
        if result.get("refused"):
            st.error(f"**{name}**: {escape_markdown(errors[0])}")
            continue
        counts = ", ".join(
            f"{result.get(field, 0)} {field}" for field in ("new", "updated", "unchanged", "copies") if field in result
        )
        line = f"**{name}**: {count(int(result.get('records') or 0), 'record')} read; {counts}"
        if errors:
            st.warning(f"{line}; {len(errors)} not ingested")
        else:
            st.success(line)
        for message in [*errors, *(str(w) for w in result.get("warnings") or [])][:50]:
            st.caption(escape_markdown(message))


def show_listing(outlets: list[str]) -> None:
    left, right = st.columns([3, 2])
    words = left.text_input("Title contains", key="browse_q", on_change=reset_browsing)
    outlet = right.selectbox("Outlet", ["All outlets", *outlets], key="browse_source", on_change=reset_browsing)
    try:
        page = client().articles(
            limit=PAGE_SIZE,
            offset=state.browse_offset,
            source=None if outlet == "All outlets" else outlet,
            q=words,
        )
    except ApiError as exc:
        st.error(escape_markdown(str(exc)))
        return
    total, articles = int(page.get("total") or 0), page.get("articles") or []
    first = state.browse_offset + 1 if articles else 0
    st.caption(f"{count(total, 'article')}; showing {first} to {state.browse_offset + len(articles)}")
    for article in articles:
        with st.container(border=True):
            st.markdown(f"**{title_link(article)}**")
            outlet_name = escape_markdown(article.get("source") or "unknown outlet")
            when = escape_markdown(day(article.get("published_at")))
            passages = count(int(article.get("chunks") or 0), "passage")
            st.caption(f"{outlet_name} · {when} · {passages} · id {escape_markdown(article['id'])}")
            if st.toggle("Read", key=f"read-{article['id']}"):
                show_article(article["id"])
    back, forward = st.columns(2)
    if back.button("Previous", key="browse_previous", disabled=state.browse_offset == 0):
        state.browse_offset = max(0, state.browse_offset - PAGE_SIZE)
        st.rerun()
    if forward.button("Next", key="browse_next", disabled=state.browse_offset + PAGE_SIZE >= total):
        state.browse_offset += PAGE_SIZE
        st.rerun()


def show_search() -> None:
    query = st.text_input("Search the text", key="search_q", placeholder="e.g. Peshmerga cooperation")
    if not query.strip():
        return
    try:
        found = client().search(query, k=10)
    except ApiError as exc:
        st.error(escape_markdown(str(exc)))
        return
    results = found.get("results") or []
    st.caption(f"{count(len(results), 'passage')}, best first")
    terms = query_terms(query)
    for result in results:
        with st.container(border=True):
            st.markdown(f"**{title_link(result)}**")
            outlet_name = escape_markdown(result.get("source") or "unknown outlet")
            when = escape_markdown(day(result.get("published_at")))
            st.caption(f"{outlet_name} · {when} · score {float(result.get('score') or 0):.3f}")
            if also := also_in_line(result):
                st.caption(also)
            st.markdown(highlight(result.get("text") or "", terms))


def _follow() -> None:
    """The form's submit: before the page is drawn, so the table already lists the new source."""
    url = str(state.get("feed_url") or "").strip()
    if not url:
        state.feeds_note = ("error", "Give the address of an RSS or Atom feed or a news sitemap.")
        return
    interval = state.get("feed_interval")
    try:
        added = client().follow(url, state.get("feed_title") or None, float(interval) if interval else None)
    except ApiError as exc:
        state.feeds_note = ("error", str(exc))
        return
    state.feeds_note = ("ok", f"Following {added.get('url')}; its first poll is due within seconds.")
    state.feed_url, state.feed_title, state.feed_interval = "", "", None


def _unfollow() -> None:
    feed_id = state.get("unfollow_feed")
    if not feed_id:
        return
    try:
        client().unfollow(feed_id)
    except ApiError as exc:
        state.feeds_note = ("error", str(exc))
    else:
        state.feeds_note = ("ok", "No longer followed; the articles it brought stay in the archive.")


def _when(value: str | None) -> str:
    """``2024-05-07 09:30`` (UTC), or a dash."""
    return value[:16].replace("T", " ") if value else "—"


def _every(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def feed_rows(feeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row a source. The table shows plain text (nothing in it is read as Markdown or followed as a link)."""
    rows = []
    for feed in feeds:
        health = feed.get("health") or {}
        status = STATUS.get(str(health.get("status")), str(health.get("status")))
        if health.get("http_status"):
            status += f" (HTTP {health['http_status']})"
        rows.append(
            {
                "Source": feed.get("title") or "",
                "Address": feed.get("url") or "",
                "Kind": feed.get("kind") or "",
                "Status": status,
                "Last fetch": _when(health.get("last_fetch_at")),
                "New": int(health.get("new_articles") or 0),
                "Total": int(health.get("total_articles") or 0),
                "Failures": int(health.get("failures") or 0),
                "Last error": health.get("last_error") or "",
                "Every": _every(float(feed.get("interval_s") or 0)),
                "Next poll": _when(health.get("next_poll_at")),
            }
        )
    return rows


def show_sources() -> None:
    st.caption(
        "RSS and Atom feeds and news sitemaps the server polls; each new article is stored and checked against"
        " the saved questions. Following or stopping needs an admin key where keys are set."
    )
    if note := state.pop("feeds_note", None):
        kind, text = note
        (st.error if kind == "error" else st.success)(escape_markdown(text))
    try:
        feeds = client().feeds()
    except ApiError as exc:
        st.error(escape_markdown(str(exc)))
        feeds = []
    if feeds:
        st.dataframe(feed_rows(feeds), hide_index=True, key="feeds_table")
        failing = sum(1 for f in feeds if (f.get("health") or {}).get("status") == "error")
        st.caption(f"{count(len(feeds), 'source')}" + (f", {failing} failing" if failing else ""))
    else:
        st.caption("No followed sources yet.")
    st.button("Refresh", key="feeds_refresh", icon=":material/refresh:", type="tertiary")
    with st.form("follow_source", border=True):
        st.text_input("Feed or sitemap address", key="feed_url", placeholder="https://example.org/rss/world.xml")
        name, every = st.columns(2)
        name.text_input("Outlet name (optional)", key="feed_title", help="Given to the articles it brings.")
        every.number_input(
            "Poll every (seconds, optional)",
            min_value=1,
            max_value=7 * 86_400,
            value=None,
            step=60,
            key="feed_interval",
            help="Else the server's BYLINE_FOLLOW__INTERVAL_S.",
        )
        st.form_submit_button("Follow", key="feed_follow", type="primary", on_click=_follow)
    if feeds:
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        names = {f["id"]: f"{f.get('title') or f.get('url')} ({f.get('url')})" for f in feeds}
        left.selectbox("Source", list(names), format_func=names.__getitem__, key="unfollow_feed")
        right.button("Stop following", key="feed_unfollow", icon=":material/remove_circle:", on_click=_unfollow)


st.title("The archive")
# Filled last, so counts read after an upload in this run are already current.
summary_box = st.container()
summary = archive()
outlet_names = [o["name"] for o in (summary or {}).get("outlets") or [] if o.get("name")]

browse, search, add, sources = st.tabs(["Browse", "Search", "Add articles", "Followed sources"])
with browse:
    show_listing(outlet_names)
with search:
    show_search()
with add:
    # The server's list (ingest's format registry), so the picker never offers less or more than it reads;
    # without it any file may be chosen and the server reports those it cannot read.
    formats = upload_formats() or {}
    # With their dots: a bare "text" is Streamlit's shortcut for any text/* file, not the suffix .text.
    suffixes = [str(s) for s in formats.get("suffixes") or []]
    if labels := [escape_markdown(str(f.get("label"))) for f in formats.get("formats") or []]:
        st.caption(f"{', '.join(labels)}; each file is read by its suffix.")
    chosen = st.file_uploader("Files to ingest", type=suffixes or None, accept_multiple_files=True, key="upload_files")
    if st.button("Ingest", key="ingest", type="primary", disabled=not chosen):
        state.upload_results = upload(list(chosen or []))
    show_upload_results(state.get("upload_results", []))
with sources:
    show_sources()
with summary_box:
    show_archive_summary(archive())
connection_settings()
