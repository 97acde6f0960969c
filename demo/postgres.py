"""A real PostgreSQL on this machine: Debian's server binaries, a cluster initialised in a temporary directory,
listening on loopback only. The tests start one per session (removed at its end); ``make cluster`` starts one
for its replicas.

PostgreSQL refuses to run as root, and the tests may run as root (CI, containers): the cluster then runs as
the ``postgres`` user (``nobody`` where there is none) in a directory handed to it. Where no server can be
found or started, ``PostgresServer.start`` raises ``Unavailable`` saying why: the tests that need it skip.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

USER = "byline"


class Unavailable(Exception):
    """No PostgreSQL here: why, for the skip message."""


def server_binaries() -> Path:
    """The folder of initdb and pg_ctl: on PATH, else the newest of Debian's /usr/lib/postgresql/*/bin."""
    found = shutil.which("initdb")
    if found is not None:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if versions:
        return Path(versions[-1]).parent
    raise Unavailable("PostgreSQL's server is not installed (no initdb; `make postgres` installs Debian's)")


class PostgresServer:
    def __init__(self) -> None:
        self.bin = server_binaries()
        self.port = free_port()
        self._owner = _unprivileged_user() if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="byline-pg-"))
        if self._owner is not None:
            os.chown(self.root, self._owner.pw_uid, self._owner.pw_gid)
        self.data, self.log = self.root / "data", self.root / "server.log"
        self._databases = itertools.count()

    def start(self) -> None:
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-U", USER, "-A", "trust", "-E", "UTF8", "--locale=C", "-N")
        # fsync off: a test cluster is thrown away, and durability costs seconds per test on a slow disk.
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -F -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database on the cluster (by default one per test, numbered); its URL."""
        name = name or f"test_{next(self._databases)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres", autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self._owner is not None:
            command = _as_user(self._owner.pw_name, command)
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise Unavailable(f"{program} failed ({done.returncode}): {done.stderr.strip()[-2000:]} {log}".strip())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise Unavailable("running as root, and neither a postgres nor a nobody user exists to run PostgreSQL as")


def _as_user(user: str, command: list[str]) -> list[str]:
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *command]
    if shutil.which("su"):
        return ["su", "-s", "/bin/sh", user, "-c", shlex.join(command)]
    raise Unavailable("running as root, with neither runuser nor su to run PostgreSQL as another user")
