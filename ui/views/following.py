"""The Following page: saved questions ("watches"), and the new articles that answered them.

The API checks every new article against each saved question and records an event when the article's short
answer is sure. Opening a watch's answers marks them read, which is what the badges count (the navigation's
``Following (n)`` and each watch's own). Watches belong to the API key, as conversations do.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import streamlit as st

from ui.client import ApiError, Filters
from ui.common import archive, client, connection_settings, show_card, show_short_answer
from ui.render import count, day, escape_markdown, link_markers, query_terms, title_link

EVENTS_SHOWN = 20
state = st.session_state
# Events that were unread when their watch was opened, so they stay marked "new" after being marked read.
state.setdefault("fresh_events", set())


def _create() -> None:
    """The form's submit: runs before the page is drawn, so the list and the badge already include the watch."""
    question = str(state.get("watch_question") or "").strip()
    if not question:
        state.following_error = "Write the question to follow first."
        return
    after, before = state.get("watch_after"), state.get("watch_before")
    filters = Filters(
        sources=tuple(state.get("watch_outlets") or ()),
        published_after=after if isinstance(after, date) else None,
        published_before=before if isinstance(before, date) else None,
    )
    try:
        made = client().create_watch(question, filters=filters, webhook_url=state.get("watch_webhook") or None)
    except ApiError as exc:
        state.following_error = str(exc)
        return
    state.following_made = made
    state.watch_question, state.watch_webhook = "", ""


def _delete(watch_id: str) -> None:
    try:
        client().delete_watch(watch_id)
    except ApiError as exc:
        state.following_error = str(exc)


def _anchor(event_id: str, n: int) -> str:
    return f"event-{re.sub(r'[^A-Za-z0-9]', '', event_id)}-{n}"


def filters_line(watch: dict[str, Any]) -> str:
    """``Outlets: A, B · published 2024-01-01 to …``, escaped; empty when the watch reads the whole archive."""
    filters = watch.get("filters") or {}
    parts = []
    if outlets := [o for o in filters.get("sources") or [] if o]:
        parts.append("Outlets: " + ", ".join(outlets))
    after, before = filters.get("published_after"), filters.get("published_before")
    if after or before:
        parts.append(f"published {day(after) if after else '…'} to {day(before) if before else '…'}")
    return escape_markdown(" · ".join(parts))


def show_event(event: dict[str, Any], terms: frozenset[str]) -> None:
    """The answer the new article gave, as the chat shows one: short answer, text, numbered source cards."""
    article, answer = event.get("article") or {}, event.get("answer") or {}
    citations = answer.get("citations") or []
    anchors = {int(c["n"]): _anchor(event["id"], int(c["n"])) for c in citations if "n" in c}
    with st.container(border=True):
        new = " :red-badge[New]" if event["id"] in state.fresh_events else ""
        outlet = escape_markdown(article.get("source") or "unknown outlet")
        when = escape_markdown(day(article.get("published_at")))
        st.markdown(f"**New article:** {title_link(article)} — {outlet}, {when}{new}")
        st.caption(f"Found {escape_markdown(day(event.get('created_at')))}")
        if short := answer.get("short_answer"):
            show_short_answer(short, anchors)
        st.markdown(link_markers(escape_markdown(answer.get("text") or ""), anchors))
        for citation in citations:
            n = int(citation.get("n", 0))
            show_card(citation, anchors.get(n, _anchor(event["id"], n)), terms, f"{event['id']}-{n}")


def show_events(watch: dict[str, Any]) -> None:
    try:
        if watch.get("unread"):
            # Shown now, so read: remember which were new, then draw the page again with the badges cleared.
            unread = client().watch_events(watch["id"], limit=200, unread=True)
            state.fresh_events |= {e["id"] for e in unread}
            client().mark_read(watch["id"])
            st.rerun()
        events = client().watch_events(watch["id"], limit=EVENTS_SHOWN)
    except ApiError as exc:
        st.error(escape_markdown(str(exc)))
        return
    if not events:
        st.caption("No new article has answered it yet.")
    terms = query_terms(watch.get("question") or "")
    for event in events:
        show_event(event, terms)
    if int(watch.get("events") or 0) > len(events):
        st.caption(f"The latest {count(len(events), 'answer')} of {int(watch['events'])}.")


def show_watch(watch: dict[str, Any]) -> None:
    with st.container(border=True):
        heading, remove = st.columns([6, 1])
        unread = int(watch.get("unread") or 0)
        heading.markdown(f"**{escape_markdown(watch.get('question') or '')}**")
        if unread:
            heading.badge(f"{unread} unread", icon=":material/mark_email_unread:", color="red")
        remove.button(
            "Delete",
            key=f"delete-{watch['id']}",
            icon=":material/delete:",
            type="tertiary",
            on_click=_delete,
            args=(watch["id"],),
        )
        facts = [f"Saved {day(watch.get('created_at'))}", count(int(watch.get("events") or 0), "answer")]
        if watch.get("last_event_at"):
            facts.append(f"last {day(watch['last_event_at'])}")
        line = escape_markdown(" · ".join(facts))
        if narrowed := filters_line(watch):
            line += f" · {narrowed}"
        if watch.get("webhook_url"):
            line += f" · {escape_markdown('posts each answer to ' + watch['webhook_url'])}"
        st.caption(line)
        if st.toggle("Show answers", key=f"events-{watch['id']}"):
            show_events(watch)


def new_watch_form(outlets: list[str], expanded: bool) -> None:
    with (
        st.expander("Follow a new question", expanded=expanded, icon=":material/add_alert:"),
        st.form("new_watch", border=False),
    ):
        st.text_input(
            "Question", key="watch_question", placeholder="e.g. Who heads the Tuz Khurmatu operations command?"
        )
        st.multiselect("Outlets", outlets, key="watch_outlets", placeholder="All outlets")
        start, end = st.columns(2)
        start.date_input("Published from", value=None, key="watch_after")
        end.date_input("to", value=None, key="watch_before")
        st.text_input(
            "Webhook URL (optional)",
            key="watch_webhook",
            help="Each answer is also POSTed here, signed with a secret shown once (docs/operations.md).",
        )
        st.form_submit_button("Follow this question", key="watch_create", type="primary", on_click=_create)


st.title("Following")
st.caption(
    "Save a question, and each new article that answers it shows up here with its answer and sources, as the"
    " chat gives them."
)
if error := state.pop("following_error", None):
    st.error(escape_markdown(error))
if made := state.pop("following_made", None):
    st.success(f"Following: {escape_markdown(made.get('question') or '')}")
    if made.get("webhook_secret"):
        st.caption("The webhook's signing secret, shown this once:")
        st.code(made["webhook_secret"], language=None)

summary = archive()
try:
    listed = client().watches()
except ApiError as exc:
    st.error(escape_markdown(str(exc)))
    listed = {"watches": [], "unread": 0}
watches = listed.get("watches") or []
# Open while there is nothing else to do here; afterwards the answers come first.
new_watch_form([o["name"] for o in (summary or {}).get("outlets") or [] if o.get("name")], not watches)
if watches:
    st.caption(f"{count(len(watches), 'saved question')}, {count(int(listed.get('unread') or 0), 'unread answer')}")
else:
    st.caption("No saved questions yet.")
for watch in watches:
    show_watch(watch)
connection_settings()
