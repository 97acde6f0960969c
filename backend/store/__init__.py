"""The vector store: Chroma, always given our own embeddings."""
