"""Byline chat. Run with ``byline ui``; the API's address comes from BYLINE_API_URL."""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from ui.client import ApiError, BylineClient
from ui.render import escape_markdown, source_line

API_URL = os.environ.get("BYLINE_API_URL", "http://127.0.0.1:8000")


def show_answer(reply: dict[str, Any]) -> None:
    st.markdown(escape_markdown(reply["answer"]))
    citations = reply.get("citations") or []
    if citations:
        st.caption("Sources")
        for citation in citations:
            st.markdown(source_line(citation))
            st.caption(escape_markdown(citation.get("snippet", "")))


st.set_page_config(page_title="Byline", page_icon="📰")
st.title("Byline")
st.caption("Ask the news archive. Every answer cites the articles it comes from.")

state = st.session_state
state.setdefault("messages", [])
state.setdefault("session_id", None)

with st.sidebar:
    st.caption(f"API: {API_URL}")
    if st.button("New conversation"):
        state.messages, state.session_id = [], None

for message in state.messages:
    with st.chat_message(message["role"]):
        if message["role"] == "user":
            st.markdown(escape_markdown(message["content"]))
        elif "error" in message:
            st.error(message["error"])
        else:
            show_answer(message["reply"])

if question := st.chat_input("Ask a question about the news"):
    state.messages.append({"role": "user", "content": question})
    with st.chat_message("user"):
        st.markdown(escape_markdown(question))
    with st.chat_message("assistant"):
        try:
            with st.spinner("Searching the archive..."):
                reply = BylineClient(API_URL).ask(question, state.session_id)
        except ApiError as exc:
            st.error(str(exc))
            state.messages.append({"role": "assistant", "error": str(exc)})
        else:
            state.session_id = reply.get("session_id")
            show_answer(reply)
            state.messages.append({"role": "assistant", "reply": reply})
