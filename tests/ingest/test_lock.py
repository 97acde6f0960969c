"""The writer lock of an archive shared through PostgreSQL: replicas with separate, empty data directories
exclude each other by the database's advisory lock, a holder killed with -9 frees it, and a holder whose session
is gone finds out before its next batch. (The file lock of an embedded archive: test_pipeline, test_reindex.)"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from backend.settings import Settings
from ingest.errors import WriterBusyError
from ingest.lock import WRITER_KEY, writer_lock

pytestmark = pytest.mark.integration

_HOLD = """
import sys, time
from pydantic import SecretStr
from backend.settings import Settings
from ingest.lock import writer_lock
with writer_lock(Settings(data_dir=sys.argv[1], database_url=SecretStr(sys.argv[2]))):
    print("held", flush=True)
    time.sleep(600)
"""


def _replica(tmp_path: Path, name: str, postgres_url: str) -> Settings:
    return Settings(data_dir=tmp_path / name, database_url=SecretStr(postgres_url))


def _libpq(postgres_url: str) -> str:
    return postgres_url.replace("postgresql+psycopg://", "postgresql://")


def test_two_replicas_on_one_database_write_one_at_a_time(tmp_path: Path, postgres_url: str) -> None:
    a, b = _replica(tmp_path, "a", postgres_url), _replica(tmp_path, "b", postgres_url)
    with writer_lock(a):
        started = time.monotonic()
        with (
            pytest.raises(WriterBusyError, match="another ingest is writing to the PostgreSQL database") as busy,
            writer_lock(b),
        ):
            pass
        assert time.monotonic() - started < 2  # at once, not after waiting on the database
        assert "one writer per archive" in str(busy.value) and busy.value.where in str(busy.value)

    held = threading.Event()

    def hold_a_while() -> None:
        with writer_lock(a):
            held.set()
            time.sleep(0.5)

    holder = threading.Thread(target=hold_a_while)
    holder.start()
    assert held.wait(30)
    started = time.monotonic()
    with writer_lock(b, wait_s=30):  # waits for the other replica's write, then writes
        waited = time.monotonic() - started
    holder.join()
    assert 0.2 < waited < 10
    assert not a.data_dir.exists() and not b.data_dir.exists()  # no lock file: nothing in the data directory


def test_a_writer_killed_with_sigkill_frees_the_lock(tmp_path: Path, postgres_url: str) -> None:
    a, b = _replica(tmp_path, "a", postgres_url), _replica(tmp_path, "b", postgres_url)
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(a.data_dir), postgres_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        with pytest.raises(WriterBusyError), writer_lock(b):
            pass
        process.kill()
        process.wait(30)
        with writer_lock(b, wait_s=30):  # PostgreSQL ended the dead process's session, and its lock with it
            pass
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_writer_whose_session_ended_stops_before_its_next_batch(tmp_path: Path, postgres_url: str) -> None:
    a, b = _replica(tmp_path, "a", postgres_url), _replica(tmp_path, "b", postgres_url)
    with writer_lock(a) as held:
        held.check()
        holder = (
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND (classid::bigint << 32) | objid::bigint = %s"
        )
        with psycopg.connect(_libpq(postgres_url), autocommit=True) as admin:
            (state,) = admin.execute(
                f"SELECT state FROM pg_stat_activity WHERE pid = ({holder})", (WRITER_KEY,)
            ).fetchone() or (None,)
            assert state == "idle"  # not "idle in transaction": the lock holds no snapshot back
            admin.execute(f"SELECT pg_terminate_backend(({holder}))", (WRITER_KEY,))  # as a restart would
        assert not held.held()
        # The other replica may write now, so this one must not.
        with writer_lock(b), pytest.raises(WriterBusyError, match="was lost"):
            held.check()
