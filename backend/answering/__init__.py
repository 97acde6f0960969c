"""From retrieved chunks to a cited answer, with the conversation kept per session."""
