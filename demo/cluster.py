"""Byline as a cluster on one machine: ``make cluster`` starts it, on loopback only.

- a PostgreSQL server (Debian's binaries, a cluster initialised in a temporary directory, ``demo/postgres.py``),
  holding everything but the vectors: article registry, lexical index, conversations, feedback, feeds,
  watches, the writer's lock;
- ``chroma run``, holding the vectors;
- two ``byline serve`` replicas (by default), each with its own empty data directory: they share no file,
  only the two servers above;
- the chat, pointed at the first replica (any replica would do).

The demo archive is sent to the first replica (``POST /articles/files``) unless ``--no-demo``; the second
finds it at once. ``Ctrl-C`` stops everything and removes what was started, unless ``--keep``.

The same ``Cluster`` is what the cluster tests (tests/integration/test_cluster.py) and the replica benchmark
start, so what a developer runs is what is tested.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx

from demo.postgres import PostgresServer, free_port

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "articles.jsonl"
CHROMA = Path(sys.executable).parent / "chroma"
BYLINE = [sys.executable, "-m", "byline"]
_START_LIMIT_S = 180.0


@dataclass
class Replica:
    """One ``byline serve`` process: its own data directory, the cluster's shared servers."""

    name: str
    data_dir: Path
    port: int
    log: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [*BYLINE, "serve", "--port", str(self.port)], env=self.env, stdout=sink, stderr=subprocess.STDOUT
            )
        _wait_until_up(self.process, f"{self.url}/health", self.log, f"replica {self.name}")

    def kill(self) -> None:
        """``kill -9``: no shutdown, no cleanup, as a machine that dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Cluster:
    """PostgreSQL, a Chroma server and ``replicas`` API servers on loopback, under ``root``."""

    root: Path
    replicas: int = 2
    env: dict[str, str] = field(default_factory=dict)  # more settings for every replica (BYLINE_...)
    chroma_path: Path | None = None  # the folder ``chroma run`` serves (default: ROOT/chroma, empty)
    database: str = ""  # an existing database's URL to use instead of starting PostgreSQL
    postgres: PostgresServer | None = None
    chroma: subprocess.Popen[bytes] | None = None
    chroma_port: int = 0
    database_url: str = ""
    servers: list[Replica] = field(default_factory=list)

    def start(self) -> Cluster:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.database:
            self.database_url = self.database
        else:
            _say("starting PostgreSQL")
            self.postgres = PostgresServer()
            self.postgres.start()
            self.database_url = self.postgres.create_database("byline")
        chroma_path = self.chroma_path or self.root / "chroma"
        _say(f"starting chroma run ({chroma_path})")
        self.chroma_port = free_port()
        log = self.root / "chroma.log"
        with log.open("ab") as sink:
            self.chroma = subprocess.Popen(
                [str(CHROMA), "run", "--path", str(chroma_path), "--host", "127.0.0.1",
                 "--port", str(self.chroma_port)],
                stdout=sink, stderr=subprocess.STDOUT,
            )  # fmt: skip
        _wait_until_up(self.chroma, f"http://127.0.0.1:{self.chroma_port}/api/v2/heartbeat", log, "chroma run")
        for index in range(self.replicas):
            name = chr(ord("a") + index)
            _say(f"starting replica {name}")
            replica = Replica(
                name, self.root / f"replica-{name}", free_port(), self.root / f"replica-{name}.log", self.replica_env()
            )
            replica.env["BYLINE_DATA_DIR"] = str(replica.data_dir)
            replica.start()
            self.servers.append(replica)
        return self

    def replica_env(self) -> dict[str, str]:
        """The environment of a replica, or of a ``byline`` command run against the cluster (add BYLINE_DATA_DIR)."""
        return {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "BYLINE_DATABASE_URL": self.database_url,
            "BYLINE_CHROMA__MODE": "http",
            "BYLINE_CHROMA__HOST": "127.0.0.1",
            "BYLINE_CHROMA__PORT": str(self.chroma_port),
            **self.env,
        }

    def restart_postgres(self, down_s: float = 0.0) -> None:
        """Stop PostgreSQL (fast shutdown: sessions are cut), wait ``down_s``, start it again on the same port."""
        assert self.postgres is not None
        self.postgres.stop()
        time.sleep(down_s)
        self.postgres.start()

    def stop(self) -> None:
        for replica in reversed(self.servers):
            replica.stop()
        if self.chroma is not None and self.chroma.poll() is None:
            self.chroma.terminate()
            self.chroma.wait(timeout=30)
        if self.postgres is not None:
            self.postgres.remove()

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def upload(replica_url: str, path: Path, timeout_s: float = 600.0) -> dict[str, object]:
    """Send an archive file to a replica, as ``POST /articles/files``; the file's outcome."""
    with path.open("rb") as handle:
        response = httpx.post(
            f"{replica_url}/articles/files", files=[("files", (path.name, handle))], timeout=timeout_s
        )
    response.raise_for_status()
    outcome: dict[str, object] = response.json()["files"][0]
    return outcome


def _wait_until_up(process: subprocess.Popen[bytes], probe_url: str, log: Path, what: str) -> None:
    deadline = time.monotonic() + _START_LIMIT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}): {log.read_text(errors='replace')[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer {probe_url} within {_START_LIMIT_S:.0f} s; its log: {log}")
        try:
            if httpx.get(probe_url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=2, help="API replicas to start (default 2)")
    parser.add_argument("--root", type=Path, help="where the servers keep their files (default: a temporary folder)")
    parser.add_argument("--ui-port", type=int, default=8501, help="the chat's port; 0 starts no chat")
    parser.add_argument("--no-demo", action="store_true", help="start with an empty archive")
    parser.add_argument("--keep", action="store_true", help="keep the root folder when stopped")
    args = parser.parse_args(argv)
    root = args.root or Path(tempfile.mkdtemp(prefix="byline-cluster-"))
    stopping: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    ui: subprocess.Popen[bytes] | None = None
    try:
        with Cluster(root, replicas=args.replicas) as cluster:
            first = cluster.servers[0]
            if not args.no_demo:
                _say(f"sending the demo archive to replica {first.name}")
                outcome = upload(first.url, DEMO)
                _say(f"  {outcome['new']} new articles, {outcome['records']} records read")
            if args.ui_port:
                ui = subprocess.Popen(
                    [*BYLINE, "ui", "--port", str(args.ui_port), "--api-url", first.url], env=cluster.replica_env()
                )
            print(f"PostgreSQL  {cluster.database_url}")
            print(f"Chroma      http://127.0.0.1:{cluster.chroma_port}")
            for replica in cluster.servers:
                print(f"replica {replica.name}   {replica.url}   (data directory {replica.data_dir})")
            if ui is not None:
                print(f"chat        http://127.0.0.1:{args.ui_port}   (on replica {first.name})")
            print("Ctrl-C stops the cluster.", flush=True)
            while not stopping:
                time.sleep(0.5)
    finally:
        if ui is not None:
            ui.terminate()
            ui.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
