"""What stops an ingest, a deletion, a backup or a tuning run: each a ``BylineError``, so one hierarchy.

The API answers each with its class's ``status`` (``backend/api/errors.py``); the command line exits with
the status ``byline.exits.EXIT_CODES`` gives its class. Nothing here imports Chroma or torch: the command
line reads these classes to choose an exit status, and ``byline --help`` must stay quick.
"""

from __future__ import annotations

from backend.core.errors import Busy, BylineError, NotFound


class WriterBusyError(Busy):
    """Another writer (an ingest, a reindex, a backup, a server's write) holds the archive.

    The message names the data directory or the shared database, ``where``: a server says it otherwise to its
    clients (``ingest.writer``)."""

    def __init__(self, message: str, retry_after_s: int = 30, where: str = "") -> None:
        super().__init__(message, retry_after_s)
        self.where = where


class RebuildNeeded(Busy):
    """An index must be rebuilt from the vector store before this write, and this caller may not do it: the
    lexical index (a run died between their writes, or another analyzer made it) or the near-duplicate
    signatures (another MinHash made them). An HTTP request never runs a full rebuild: the server's writer
    starts one in the background and the client retries."""

    def __init__(
        self,
        message: str = "the archive's indexes are being rebuilt after an interrupted write or an upgrade; try again"
        " shortly",
        retry_after_s: int = 30,
    ) -> None:
        super().__init__(message, retry_after_s)


class ArchiveWriteError(BylineError):
    """The archive could not be written: a full disk, a read-only or unwritable data directory.

    The message names no path (an API client gets it); the command line adds the directory."""

    status = 503
    title = "Service unavailable"
    retry_after_s = 60


class ArticleNotFoundError(NotFound):
    """No stored article or recorded copy has the id or URL asked for."""


class BackupError(BylineError):
    """A backup or restore that cannot be done as asked; the message says why and what to do."""

    status = 409
    title = "Conflict"


class TransferError(BylineError):
    """An archive's state cannot be moved into the database: none configured, or it already holds an archive."""

    status = 409
    title = "Conflict"


class TuneError(BylineError):
    """Tuning cannot start: too few articles, or the training extras are missing."""
