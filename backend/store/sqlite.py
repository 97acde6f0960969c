"""The SQLite habits shared by Byline's small stores (article registry, sessions)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path


def create(path: Path, schema: str) -> None:
    """Create the file and its tables; WAL lets readers (the API) go on while one writer commits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)


@contextmanager
def connect(path: Path, timeout: float = 30.0) -> Iterator[sqlite3.Connection]:
    """One short-lived connection in one transaction: committed on success, rolled back on error."""
    db = sqlite3.connect(path, timeout=timeout)
    try:
        db.execute("PRAGMA foreign_keys=ON")
        with db:
            yield db
    finally:
        db.close()


class SqliteStore:
    """Base of the small stores: the file created with its schema, a short connection per call."""

    schema = ""

    def __init__(self, path: Path) -> None:
        self._path = path
        create(path, self.schema)

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self._path)
