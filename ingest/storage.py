"""A failed write told apart from other failures, and said in words a person can act on.

An ``OSError`` says what happened by its errno and SQLite by its result code (under SQLAlchemy's wrapper, for
the stores written in it); Chroma says it only in words (as vague as "Error in compaction"), so for Chroma, and
for a SQLite error made by hand, what is said is backed by a look at the directory itself.
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chromadb.errors import ChromaError
from sqlalchemy.exc import DBAPIError

from ingest.errors import ArchiveWriteError

_OS_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "a file reached the largest size this process may write",
    errno.EROFS: "the data directory is read-only",
    errno.EACCES: "no permission to write the data directory",
    errno.EPERM: "no permission to write the data directory",
}
# SQLite's primary result codes (an extended code keeps the primary one in its low byte).
_SQLITE_REASONS = {
    13: "the disk is full",  # SQLITE_FULL
    8: "the data directory is read-only",  # SQLITE_READONLY
}
_LOW_SPACE = 1 << 20


def storage_problem(exc: BaseException, data_dir: Path) -> str | None:
    """What stopped a write, in words, or None when ``exc`` is not a storage failure."""
    if isinstance(exc, DBAPIError) and isinstance(exc.orig, sqlite3.Error):
        exc = exc.orig  # SQLite's own error, with its result code and without the statement
    if isinstance(exc, OSError):
        inside = exc.filename is None or Path(str(exc.filename)).resolve().is_relative_to(data_dir.resolve())
        if exc.errno not in _OS_REASONS or not inside:  # an input file's trouble, not the archive's
            return None
        return f"{_OS_REASONS[exc.errno]} ({exc.strerror})"
    if not isinstance(exc, sqlite3.Error | ChromaError):
        return None
    said = str(exc).replace(str(data_dir.resolve()), "the data directory").replace(str(data_dir), "the data directory")
    code = getattr(exc, "sqlite_errorcode", None)
    reason = _SQLITE_REASONS.get(code & 0xFF) if isinstance(code, int) else None
    if reason is None:
        reason = _reason_from_words(said.lower(), data_dir)
    return f"{reason} ({type(exc).__name__}: {said[:200]})"


def _reason_from_words(lowered: str, data_dir: Path) -> str:
    try:
        free = shutil.disk_usage(data_dir if data_dir.exists() else data_dir.parent).free
    except OSError:
        free = None
    if "disk is full" in lowered or "no space" in lowered:
        return "the disk is full"
    if "readonly" in lowered or "read-only" in lowered or (data_dir.exists() and not os.access(data_dir, os.W_OK)):
        return "the data directory is read-only"
    if free is not None and free < _LOW_SPACE:
        return "the disk is full"
    if resource.getrlimit(resource.RLIMIT_FSIZE)[0] != resource.RLIM_INFINITY:
        return "a file may have reached the largest size this process may write (ulimit -f)"
    return "the store could not be written"


@contextmanager
def storage_errors(data_dir: Path) -> Iterator[None]:
    """Turn a failed write into ``ArchiveWriteError`` with a reason a person can act on."""
    try:
        yield
    except (OSError, sqlite3.Error, DBAPIError, ChromaError) as exc:
        reason = storage_problem(exc, data_dir)
        if reason is None:
            raise
        raise ArchiveWriteError(
            f"cannot write the archive: {reason}. Nothing half-written is visible (an article is recorded only"
            " once all its chunks are stored); once the cause is fixed, the same ingest again finishes the work"
        ) from exc
