"""Domain errors; the API maps each to one HTTP status in a single handler."""

from __future__ import annotations


class BylineError(Exception):
    """Base class: ``status`` is the HTTP status the API answers with."""

    status = 500
    title = "Internal error"


class Unauthorized(BylineError):
    status = 401
    title = "Unauthorized"


class NotFound(BylineError):
    status = 404
    title = "Not found"
