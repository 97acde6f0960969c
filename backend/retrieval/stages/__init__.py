"""The default retriever's stages, one file each; ``backend.retrieval.news`` orders them from the settings."""
