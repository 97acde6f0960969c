"""Retrievers: from a query to ranked chunks."""
