"""The app's pages, run by ``st.navigation`` in ui/app.py. Not named ``pages/``: Streamlit would list that
folder's files in the sidebar under their file names while a page loads."""
