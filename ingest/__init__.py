"""Byline's write side: load -> clean -> chunk -> embed -> upsert."""
