"""The archive page: browse and search what is stored, and add files to it.

Uploads go one file per request, so the progress bar moves per file and one bad file cannot take the
others' results with it.
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


st.title("The archive")
# Filled last, so counts read after an upload in this run are already current.
summary_box = st.container()
summary = archive()
outlet_names = [o["name"] for o in (summary or {}).get("outlets") or [] if o.get("name")]

browse, search, add = st.tabs(["Browse", "Search", "Add articles"])
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
with summary_box:
    show_archive_summary(archive())
connection_settings()
