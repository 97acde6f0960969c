"""Who has an embedded Chroma directory open.

Embedded Chroma is not safe across processes: a second process on the same directory can block
for minutes on SQLite's lock and read stale data. A server holds a shared lock on the data
directory for its lifetime; a command that would open the same embedded store checks it first and
refuses with a message instead. (Chroma http mode needs none of this: the server owns the files.)
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO

from backend.core.errors import BylineError

_LOCK_NAME = ".server.lock"


class DirectoryInUse(BylineError):
    status = 409
    title = "Data directory in use"


def hold_for_server(data_dir: Path) -> IO[str]:
    """Mark ``data_dir`` as served; the mark lasts as long as the returned file stays open."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / _LOCK_NAME).open("w")
    fcntl.flock(handle, fcntl.LOCK_SH)  # shared: several workers of one server may hold it
    return handle


def ensure_not_served(data_dir: Path) -> None:
    """Raise ``DirectoryInUse`` when a server has this directory's embedded store open."""
    path = data_dir / _LOCK_NAME
    if not path.exists():
        return
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise DirectoryInUse(
                f"a Byline server has the archive in {data_dir} open with embedded Chroma, which two processes"
                " must not share; send articles to the server (POST /articles or /articles/files), stop it"
                " first, or run Chroma as a server for both (BYLINE_CHROMA__MODE=http)"
            ) from exc
        fcntl.flock(handle, fcntl.LOCK_UN)
