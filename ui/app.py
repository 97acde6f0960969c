"""Byline's Streamlit app: the chat, the saved questions and the archive page. Run with ``byline ui``.

The API's address and key come from BYLINE_API_URL and BYLINE_API_KEY, or the sidebar's Connection
fields. The app talks to the API over HTTP only.
"""

from __future__ import annotations

import streamlit as st

from ui.common import init_connection, unread_answers

st.set_page_config(page_title="Byline", page_icon="📰", layout="wide")
init_connection()
unread = unread_answers()
page = st.navigation(
    [
        st.Page("views/chat.py", title="Chat", icon=":material/chat:", default=True),
        st.Page(
            "views/following.py",
            title=f"Following ({unread})" if unread else "Following",
            icon=":material/notifications_active:" if unread else ":material/notifications:",
            url_path="following",
        ),
        st.Page("views/archive.py", title="Archive", icon=":material/inventory_2:"),
    ]
)
# Each page ends with the sidebar's connection settings: nothing may follow page.run(), since AppTest
# drops what the entry script draws after the page on reruns.
page.run()
