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


class Forbidden(BylineError):
    status = 403
    title = "Forbidden"


class Busy(BylineError):
    """Try again later: another writer holds the archive, or the server is short of something."""

    status = 503
    title = "Service unavailable"

    def __init__(self, message: str, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TooManyRequests(BylineError):
    status = 429
    title = "Too many requests"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InvalidRequest(BylineError):
    """Well-formed but not acceptable (beyond a configured limit, say)."""

    status = 422
    title = "Invalid request"


class StoreUnavailable(BylineError):
    """A store cannot be reached (a Chroma server or the PostgreSQL database down): the request may be tried again."""

    status = 503
    title = "Service unavailable"
    retry_after_s = 5


class EncoderMismatch(StoreUnavailable):
    """The archive's vectors were made by another encoder than the configured one (see ``backend.core.encoder``).

    A ``StoreUnavailable``: the store cannot answer this process's questions, ``/health`` and ``/ready`` say
    so, and a command line refuses with the message (exit 2), which names both encoders and the way out."""

    title = "Archive embedded with another model"
    retry_after_s = 60


class IndexStale(StoreUnavailable):
    """The lexical index holds terms made by another analyzer (``backend.core.text.ANALYZER_VERSION``).

    Matching a question's terms against them would silently miss words, so the index is not queried
    until it is rebuilt: when the server starts (``backend.services.build_services``) or an ingest run does."""

    title = "Search index being rebuilt"
    retry_after_s = 30
