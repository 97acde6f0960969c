"""The `byline` command line: one entry point over ingest, serve, ui and ask."""
