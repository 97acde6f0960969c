"""The Streamlit chat. It talks to the Byline API over HTTP and imports nothing from ``backend``."""
