"""One writer per archive (an ingest, a reindex, a backup or restore, a server's write), and one poller of its
followed sources (``ingest.follow.poller.follow_lock``).

An embedded archive is one data directory, and its locks are files in it (``flock``). With ``database_url``
the archive is shared by every replica (its tables in PostgreSQL, its vectors in a Chroma server), and a file
in one replica's directory would keep no other replica out: each lock is then a PostgreSQL session advisory
lock under a key of its own, held on a connection of its own for as long as it is held
(``Database.advisory_lock``). Either way a lock dies with its holder: the kernel lets a dead process's file lock
go, PostgreSQL a dead session's advisory lock, so a writer killed with -9 leaves nothing to clean up.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from sqlalchemy import Connection, exc

from backend.settings import Settings
from backend.store.db import shared_database
from ingest.errors import WriterBusyError

LOCK_FILE = ".ingest.lock"
# The advisory locks' keys, their names in ASCII. PostgreSQL keeps advisory locks per database, so archives in
# two databases of one server never meet.
WRITER_KEY = 0x575249544552  # "WRITER"
FOLLOW_KEY = 0x464F4C4C4F57  # "FOLLOW"
_RETRY_S = 0.05


class HeldLock:
    """A lock this process holds until ``release``: an open, locked file of the data directory, or the
    connection whose PostgreSQL session holds the advisory lock."""

    def __init__(self, holder: IO[str] | Connection, where: str) -> None:
        self._holder = holder
        self.where = where

    def held(self) -> bool:
        """Whether the lock is still this process's. A file lock is until released; an advisory lock is lost
        with its session (PostgreSQL restarted, the connection cut), which a query on it finds out."""
        if isinstance(self._holder, Connection):
            if self._holder.closed or self._holder.invalidated:
                return False
            try:
                self._holder.exec_driver_sql("SELECT 1")
            except exc.DBAPIError:
                return False
            return True
        return not self._holder.closed

    def check(self) -> None:
        """``WriterBusyError`` once the lock is lost: a writer stops before its next batch rather than write
        beside one that has taken the lock meanwhile; the next run goes on from where it stopped."""
        if not self.held():
            raise WriterBusyError(
                f"the writer lock on {self.where} was lost (the connection to the database dropped); the run stopped"
                " there, and the next run goes on from where it stood",
                where=self.where,
            )

    def release(self) -> None:
        """Closing the file lets its lock go, closing the connection ends the session that held the other."""
        self._holder.close()


def try_lock(settings: Settings, file_name: str, key: int, wait_s: float = 0.0) -> HeldLock | None:
    """The archive's lock ``file_name`` in its data directory, or, with a shared database, the advisory lock
    ``key``: taken within ``wait_s`` (at once by default), else None (another process holds it)."""
    if settings.database_url is not None:
        database = shared_database(settings.database_url.get_secret_value())
        connection = database.advisory_lock(key, wait_s)
        return None if connection is None else HeldLock(connection, str(database))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    handle = (settings.data_dir / file_name).open("w")
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return HeldLock(handle, str(settings.data_dir))
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.close()
                return None
            time.sleep(_RETRY_S)


@contextmanager
def writer_lock(settings: Settings, wait_s: float = 0.0) -> Iterator[HeldLock]:
    """One writer per archive; another fails after ``wait_s`` (at once by default) rather than waiting on the
    database. API workers wait a little for each other's writes; a CLI run does not wait."""
    held = try_lock(settings, LOCK_FILE, WRITER_KEY, wait_s)
    if held is None:
        if settings.database_url is None:
            where, scope = str(settings.data_dir), "one writer per data directory"
        else:
            where = str(shared_database(settings.database_url.get_secret_value()))
            scope = "one writer per archive, whichever replica or machine it runs on"
        raise WriterBusyError(f"another ingest is writing to {where}; wait for it to finish ({scope})", where=where)
    try:
        yield held
    finally:
        held.release()
