"""The chat: streamed answers (the short answer first) with numbered source cards, how each question was read,
and feedback.

State lives in ``st.session_state``: ``messages`` (the conversation shown) and ``session_id`` (the
API's conversation, passed back so follow-ups are read in context). Every text from the API goes
through ``ui.render`` before it reaches Markdown.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import streamlit as st

from ui.client import ApiError, Filters
from ui.common import archive, client, connection_settings, show_archive_summary, show_card, show_short_answer
from ui.render import card_anchor, count, day, escape_markdown, link_markers, query_terms, reading_line

Message = dict[str, Any]
state = st.session_state
state.setdefault("messages", [])
state.setdefault("session_id", None)
state.setdefault("feedback_notes", {})


def new_conversation() -> None:
    state.messages, state.session_id = [], None


def open_conversation(session_id: str) -> None:
    """Reload a past conversation's turns; errors land in the sidebar instead of replacing the chat."""
    try:
        stored = client().session(session_id)
    except ApiError as exc:
        state.sidebar_error = str(exc)
        return
    messages: list[Message] = []
    for turn, past in enumerate(stored.get("turns") or []):
        messages.append({"role": "user", "content": past.get("question", "")})
        reply = {**past, "session_id": session_id}
        messages.append({"role": "assistant", "reply": reply, "question": past.get("question", ""), "turn": turn})
    state.messages, state.session_id = messages, session_id


def send_feedback(session_id: str, turn: int, key: str) -> None:
    value = state.get(key)
    if value is None:
        return
    rating = "up" if value == 1 else "down"
    try:
        client().feedback(session_id, turn, rating)
    except ApiError as exc:
        state.feedback_notes[key] = ("error", f"Feedback not recorded: {exc}")
    else:
        state.feedback_notes[key] = ("ok", "Thanks, your feedback was recorded.")


def show_answer(message: Message, position: int) -> None:
    reply: dict[str, Any] = message["reply"]
    citations = reply.get("citations") or []
    anchors = {int(c["n"]): card_anchor(position, int(c["n"])) for c in citations if "n" in c}
    if short := reply.get("short_answer"):
        show_short_answer(short, anchors)
    st.markdown(link_markers(escape_markdown(reply.get("answer") or ""), anchors))
    if reply.get("rewritten_query"):
        st.caption(reading_line(reply))
    if reply.get("degraded"):
        reason = escape_markdown(reply.get("degraded_reason") or "the language model did not answer")
        st.warning(f"Written without the language model: {reason}.", icon=":material/warning:")
    session_id, turn = reply.get("session_id"), message.get("turn")
    if session_id and turn is not None:
        key = f"feedback-{session_id}-{turn}"
        st.feedback("thumbs", key=key, on_change=send_feedback, args=(session_id, turn, key))
        if note := state.feedback_notes.get(key):
            kind, text = note
            (st.error if kind == "error" else st.caption)(escape_markdown(text))
    terms = query_terms(message.get("question", ""), reply.get("rewritten_query") or "")
    for citation in citations:
        n = int(citation.get("n", 0))
        show_card(citation, anchors.get(n, card_anchor(position, n)), terms, f"{session_id}-{turn}-{n}")


def stream_answer(question: str, as_of: date | None, filters: Filters | None) -> dict[str, Any]:
    """Show the answer as it is written, then return the final reply (which replaces the streamed text)."""
    status, body = st.empty(), st.empty()
    status.caption("Searching the archive…")
    text, reply = "", None
    try:
        for event in client().ask_stream(question, state.session_id, as_of=as_of, filters=filters):
            if event.name == "start":
                found = len(event.data.get("sources") or [])
                status.caption(f"{reading_line(event.data)} · {count(found, 'source')}")
            elif event.name == "token":
                text += str(event.data.get("text", ""))
                body.markdown(escape_markdown(text) + " ▍")
            elif event.name == "answer":
                reply = event.data
    finally:
        status.empty()
        body.empty()
    assert reply is not None  # ask_stream raises ApiError when no answer arrived
    return reply


def sidebar_filters(summary: dict[str, Any] | None) -> tuple[date | None, Filters | None]:
    st.subheader("Filters")
    outlets = [o["name"] for o in (summary or {}).get("outlets") or [] if o.get("name")]
    chosen = st.multiselect("Outlets", outlets, key="filter_outlets", placeholder="All outlets")
    start, end = st.columns(2)
    after = start.date_input("Published from", value=None, key="filter_after")
    before = end.date_input("to", value=None, key="filter_before")
    as_of = st.date_input("Ask as of", value=None, key="filter_as_of", help="Nothing published later is used.")
    if isinstance(after, date) and isinstance(before, date) and after > before:
        st.warning("The start date is after the end date; the date range is ignored.")
        after = before = None
    show_archive_summary(summary)
    filters = Filters(
        sources=tuple(chosen),
        published_after=after if isinstance(after, date) else None,
        published_before=before if isinstance(before, date) else None,
    )
    return (as_of if isinstance(as_of, date) else None), (filters if filters.to_json() else None)


def past_conversations() -> None:
    st.subheader("Past conversations")
    if error := state.pop("sidebar_error", None):
        st.error(escape_markdown(error))
    try:
        sessions = client().sessions(limit=20)
    except ApiError as exc:
        st.caption(escape_markdown(str(exc)))
        return
    if not sessions:
        st.caption("None yet.")
    for past in sessions:
        question = str(past.get("first_question") or "(no question)")
        short = question if len(question) <= 60 else question[:57] + "…"
        turns = int(past.get("turns") or 0)
        label = f"{escape_markdown(short)} · {count(turns, 'turn')}"
        st.button(
            label,
            key=f"open-{past['id']}",
            on_click=open_conversation,
            args=(past["id"],),
            type="primary" if past["id"] == state.session_id else "tertiary",
            help=f"Started {escape_markdown(day(past.get('created_at')))}",
        )


st.title("Byline")
st.caption("Ask the news archive. Every answer cites the articles it comes from; click a [n] to see its source.")

with st.sidebar:
    st.button("New conversation", key="new_conversation", on_click=new_conversation, icon=":material/add:")
    as_of, filters = sidebar_filters(archive())
    # Filled last, so a conversation started by this run's question is already listed.
    past_box = st.container()

for position, message in enumerate(state.messages):
    with st.chat_message(message["role"]):
        if message["role"] == "user":
            st.markdown(escape_markdown(message["content"]))
        elif "error" in message:
            st.error(escape_markdown(message["error"]))
        else:
            show_answer(message, position)

if question := st.chat_input("Ask a question about the news"):
    state.messages.append({"role": "user", "content": question})
    with st.chat_message("user"):
        st.markdown(escape_markdown(question))
    with st.chat_message("assistant"):
        try:
            reply = stream_answer(question, as_of, filters)
        except ApiError as exc:
            st.error(escape_markdown(str(exc)))
            state.messages.append({"role": "assistant", "error": str(exc)})
        else:
            turn = sum(1 for m in state.messages if "reply" in m)
            state.session_id = reply.get("session_id") or state.session_id
            message = {"role": "assistant", "reply": reply, "question": question, "turn": turn}
            state.messages.append(message)
            show_answer(message, len(state.messages) - 1)

with past_box:
    past_conversations()
connection_settings()
