"""The exit status of a ``byline`` command that fails: one table from error type to status, for every command.

- 2: a refusal. The archive is not touched as it is: another writer holds it, a server has it open, another
  encoder made its vectors, a backup is not one, tuning cannot start. Every ``BylineError`` is one unless
  the table says otherwise; the API answers the same errors with their ``status``.
- 1: a failure. A write or a copy that did not go through (a full disk, a read-only data directory), an
  article that is not there.

Only this module's table chooses; commands wrap their work in ``exits()``. Imports stay light (no Chroma,
no torch), so ``byline --help`` stays quick.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from backend.core.errors import BylineError
from ingest.errors import ArchiveWriteError, ArticleNotFoundError

EXIT_CODES: dict[type[Exception], int] = {
    BylineError: 2,
    ArchiveWriteError: 1,
    ArticleNotFoundError: 1,
    OSError: 1,
    sqlite3.Error: 1,
}


def exit_code(exc: BaseException) -> int | None:
    """The status for ``exc``: its nearest class in the table, or None for an error the table does not know.
    An error of the stores written in SQLAlchemy has the status of the driver's error it wraps (``orig``):
    SQLite's full disk is one failure whichever layer reports it."""
    found = next((EXIT_CODES[cls] for cls in type(exc).__mro__ if cls in EXIT_CODES), None)
    wrapped = getattr(exc, "orig", None)
    if found is None and isinstance(wrapped, BaseException):
        return exit_code(wrapped)
    return found


def tell(exc: BaseException, data_dir: Path | None = None) -> None:
    """Say ``exc`` on standard error. An ``ArchiveWriteError`` names no path (an API client gets the same
    message); here the directory is added."""
    message = f"error: {exc}"
    if isinstance(exc, ArchiveWriteError) and data_dir is not None:
        message += f" (data directory: {data_dir})"
    typer.echo(message, err=True)


@contextmanager
def exits(data_dir: Path | None = None) -> Iterator[None]:
    """Turn an error the table knows into its message and exit status; anything else is a bug and shows
    as one. ``data_dir``: the archive the command works on, named in a failed write's message."""
    try:
        yield
    except Exception as exc:
        code = exit_code(exc)
        if code is None:
            raise
        tell(exc, data_dir)
        raise typer.Exit(code) from exc
