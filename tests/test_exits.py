"""One table gives every ``byline`` command its exit status: each error class has one, and the commands use it."""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy.exc
import typer
from typer.testing import CliRunner

import backend.store.ownership
from backend.core.errors import BylineError, EncoderMismatch, StoreUnavailable
from backend.settings import get_settings
from byline.cli import app
from byline.exits import EXIT_CODES, exit_code, exits
from ingest.errors import ArchiveWriteError, ArticleNotFoundError, BackupError, TuneError, WriterBusyError
from ingest.lock import writer_lock

# What each error means to a script that runs byline: 2 a refusal, 1 a failure.
EXPECTED: list[tuple[Exception, int]] = [
    (WriterBusyError("another ingest is writing"), 2),
    (EncoderMismatch("another encoder"), 2),
    (backend.store.ownership.DirectoryInUse("a server has it open"), 2),
    (BackupError("not a backup"), 2),
    (TuneError("too few articles"), 2),
    (StoreUnavailable("Chroma is down"), 2),
    (ArchiveWriteError("cannot write the archive"), 1),
    (ArticleNotFoundError("no article"), 1),
    (OSError(errno.ENOSPC, "No space left on device"), 1),
    (sqlite3.OperationalError("database or disk is full"), 1),
    # As a store written in SQLAlchemy raises it.
    (sqlalchemy.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full")), 1),
]


def _subclasses(cls: type[BylineError]) -> Iterator[type[BylineError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_error_class_has_an_exit_status() -> None:
    for cls in [BylineError, *_subclasses(BylineError)]:
        assert exit_code(cls.__new__(cls)) in {1, 2}, cls
    assert set(EXIT_CODES.values()) == {1, 2}


@pytest.mark.parametrize(("error", "code"), EXPECTED, ids=lambda e: type(e).__name__)
def test_a_command_exits_with_the_status_of_its_error(error: Exception, code: int, tmp_path: Path) -> None:
    probe = typer.Typer()

    @probe.command()
    def fail() -> None:
        with exits(tmp_path):
            raise error

    result = CliRunner().invoke(probe, [])
    assert result.exit_code == code
    said = f"error: {error}" + (f" (data directory: {tmp_path})" if isinstance(error, ArchiveWriteError) else "")
    assert result.stderr.strip() == said


def test_an_error_the_table_does_not_know_is_not_hidden() -> None:
    assert exit_code(ValueError("a bug")) is None
    with pytest.raises(ValueError, match="a bug"), exits():
        raise ValueError("a bug")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    data = tmp_path / "data"
    monkeypatch.setenv("BYLINE_DATA_DIR", str(data))
    get_settings.cache_clear()
    yield data
    get_settings.cache_clear()


def test_backup_of_a_busy_archive_is_refused_with_the_tables_status(data_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    nothing = runner.invoke(app, ["backup", str(tmp_path / "copy")])
    assert nothing.exit_code == 2 and "there is no archive in" in nothing.stderr  # a BackupError
    data_dir.mkdir()
    get_settings().articles_db.touch()
    with writer_lock(get_settings()):
        busy = runner.invoke(app, ["backup", str(tmp_path / "copy")])
    assert busy.exit_code == exit_code(WriterBusyError("")) == 2
    assert "another ingest is writing to" in busy.stderr and "Traceback" not in busy.stderr


def test_backup_and_restore_of_an_archive_kept_in_postgresql_are_refused(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy of the data directory would leave the registry out: the database has its own tools."""
    monkeypatch.setenv("BYLINE_DATABASE_URL", "postgresql://byline@db.invalid:5432/byline")
    get_settings.cache_clear()
    for command in ("backup", "restore"):
        refused = CliRunner().invoke(app, [command, str(tmp_path / "copy")])
        assert refused.exit_code == 2 and "pg_dump" in refused.stderr, refused.stderr
