"""Moving an embedded archive's state into the shared PostgreSQL database, for an archive outgrowing one machine.

``byline db import DATA_DIR`` copies every SQLite store of a data directory (article registry, lexical index,
conversations and feedback, feeds, saved questions) into the database ``BYLINE_DATABASE_URL`` names, table by
table, rows as they are. Each store goes in its own transaction, so a store is copied whole or not at all,
and a store whose tables already hold rows there is refused rather than merged: two archives' article ids,
doc numbers and conversations would collide. The vectors stay where they are: a ``chroma run --path
DATA_DIR/chroma`` serves them to every replica.

Each SQLite file is first brought to its newest schema (as opening it with Byline would), so both sides
have the same tables and columns; the copy then needs to know nothing about any store. Integer keys that
PostgreSQL numbers itself (the lexical index's doc numbers, feedback ids) are copied as they are and the
sequence set past them, so the next row written gets a new number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from backend.settings import Settings
from backend.store.db import Branch, Database, opened, shared_database
from backend.store.ownership import ensure_not_served
from ingest.errors import TransferError as TransferError  # raised here; importable from here too
from ingest.lock import writer_lock

_PAGE = 5_000  # rows per INSERT batch: a page of postings is a few hundred KB


@dataclass(frozen=True, slots=True)
class StoreCopied:
    branch: str
    rows: dict[str, int]  # table -> rows copied


def stores(settings: Settings) -> list[tuple[Branch, Path]]:
    """Each store of the embedded default with its SQLite file."""
    return [
        ("articles", settings.articles_db),
        ("lexical", settings.lexical_db),
        ("sessions", settings.sessions_db),
        ("feeds", settings.feeds_db),
        ("watches", settings.watches_db),
    ]


def import_state(
    source_dir: Path, settings: Settings, progress: Callable[[str], None] = lambda _: None
) -> list[StoreCopied]:
    """Copy ``source_dir``'s SQLite stores into ``settings.database_url``; what was copied, per store."""
    if settings.database_url is None:
        raise TransferError("no database to import into: set BYLINE_DATABASE_URL to a postgresql:// URL")
    ensure_not_served(source_dir)
    target = shared_database(settings.database_url.get_secret_value())
    source_settings = settings.model_copy(update={"data_dir": source_dir, "database_url": None})
    copied = []
    # The source directory's own lock, so the copy reads a still archive; the database's, so no replica writes
    # into the tables being filled.
    with writer_lock(source_settings), writer_lock(settings):
        for branch, path in stores(source_settings):
            if not path.exists():
                progress(f"{branch}: no {path.name} in {source_dir}, nothing to copy")
                continue
            copied.append(_copy_store(branch, opened(path, branch), opened(target, branch), progress))
    return copied


def _copy_store(branch: Branch, source: Database, target: Database, progress: Callable[[str], None]) -> StoreCopied:
    names = _store_tables(source)
    source_meta, target_meta = sa.MetaData(), sa.MetaData()
    source_meta.reflect(source.engine, only=names)
    with target.begin() as into:
        target_meta.reflect(into, only=names)
        ordered = [t for t in target_meta.sorted_tables if t.name in names]  # parents before children
        full = [t.name for t in ordered if into.execute(sa.select(sa.literal(1)).select_from(t).limit(1)).first()]
        if full:
            raise TransferError(
                f"the database already holds {branch} rows (tables {', '.join(full)}): import into an empty"
                " database, or one that holds none of this archive's stores"
            )
        rows: dict[str, int] = {}
        with source.begin() as out:
            for table in ordered:
                rows[table.name] = _copy_table(out, into, source_meta.tables[table.name], table)
                progress(f"{branch}: {rows[table.name]:,} rows of {table.name}")
        _advance_sequences(into, ordered)
    return StoreCopied(branch, rows)


def _store_tables(database: Database) -> list[str]:
    """The store's own tables: everything but Alembic's version table and SQLite's internals."""
    found = sa.inspect(database.engine).get_table_names()
    return [name for name in found if name != "alembic_version" and not name.startswith("sqlite_")]


def _copy_table(out: sa.Connection, into: sa.Connection, source: sa.Table, target: sa.Table) -> int:
    columns = [c.name for c in target.columns]
    count = 0
    for page in _pages(out, source, columns):
        into.execute(target.insert(), [dict(zip(columns, row, strict=True)) for row in page])
        count += len(page)
    return count


def _pages(out: sa.Connection, table: sa.Table, columns: list[str]) -> Iterator[Sequence[sa.Row[Any]]]:
    result = out.execution_options(stream_results=True).execute(sa.select(*(table.c[n] for n in columns)))
    while page := result.fetchmany(_PAGE):
        yield page


def _advance_sequences(into: sa.Connection, tables: list[sa.Table]) -> None:
    for table in tables:
        for column in table.primary_key.columns:
            if not isinstance(column.type, sa.Integer):
                continue
            sequence = into.execute(
                sa.text("SELECT pg_get_serial_sequence(:table, :column)"), {"table": table.name, "column": column.name}
            ).scalar()
            if sequence is not None:
                into.execute(
                    sa.text(f"SELECT setval(:sequence, COALESCE((SELECT MAX({column.name}) FROM {table.name}), 0) + 1,"
                            " false)"),
                    {"sequence": sequence},
                )  # fmt: skip
