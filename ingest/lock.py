"""One writer per data directory: an ingest, a reindex, a backup or restore, a server's write."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ingest.errors import WriterBusyError

LOCK_FILE = ".ingest.lock"


@contextmanager
def writer_lock(data_dir: Path, wait_s: float = 0.0) -> Iterator[None]:
    """One writer per data directory; another fails after ``wait_s`` (at once by default) rather than
    waiting on SQLite. API workers wait a little for each other's writes; a CLI run does not wait."""
    data_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    with (data_dir / LOCK_FILE).open("w") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if time.monotonic() >= deadline:
                    message = f"another ingest is writing to {data_dir}; wait for it to finish"
                    raise WriterBusyError(f"{message} (one writer per data directory)") from exc
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
