"""Where the small stores keep their tables: a SQLite file in the data directory, or one PostgreSQL database.

The embedded default (``database_url`` unset) keeps today's files, each its own engine: a short connection
per call (no pool, so nothing holds a file open between calls), foreign keys on, WAL so that readers go on
while one writer commits. With ``database_url`` every store shares one pooled engine per process on the
PostgreSQL database, which many API replicas share too. The stores are written once in SQLAlchemy Core;
what differs between the two dialects (the upsert, a group's values joined into one string, the integrity
check, the advisory locks, a writer's lock) is chosen here, in one place.

Each store brings its tables up to date when it is opened (``Database.migrate``): Alembic, one migration
environment with a branch per store (``sessions``, ``feeds``, ``watches``, ``articles``, ``lexical``), so a SQLite
file holds its own store's tables and version while PostgreSQL holds them all.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import ColumnElement, Connection, Engine, Table, event, exc
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.pool import NullPool

from backend.core.errors import StoreUnavailable
from backend.settings import Settings

Branch = Literal["sessions", "feeds", "watches", "articles", "lexical"]
Insert = postgresql.Insert | sqlite_dialect.Insert

MIGRATIONS = Path(__file__).with_name("migrations")
# pg_advisory_xact_lock's key for schema upgrades ("BYLINE" in ASCII): replicas starting together upgrade in turn.
_MIGRATION_LOCK = 0x42594C494E45
# A PostgreSQL that does not answer must fail a request within seconds (503), not hang it.
_CONNECT_TIMEOUT_S = 5
_SQLITE_TIMEOUT_S = 30.0
_WAL_ATTEMPTS = 200  # 10 s
_LOCK_RETRY_S = 0.05
# A lock holder's session: probed after 30 s of silence, given up after three unanswered probes 10 s apart.
_LOCK_KEEPALIVES = (("tcp_keepalives_idle", 30), ("tcp_keepalives_interval", 10), ("tcp_keepalives_count", 3))

_shared: dict[str, Database] = {}
_shared_lock = threading.Lock()


class Database:
    """One engine and what its dialect needs: the upsert construct, transactions, errors, migrations."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def shared(self) -> bool:
        """Whether this is the database server many processes share (PostgreSQL), not a local file."""
        return self.engine.dialect.name == "postgresql"

    def __str__(self) -> str:
        """Where the tables are, for messages: the SQLite file, or the PostgreSQL database and its server (never
        the password)."""
        url = self.engine.url
        if self.shared:
            return f"the PostgreSQL database {url.database} on {url.host}:{url.port or 5432}"
        return str(url.database)

    def insert(self, table: Table) -> Insert:
        """An INSERT that can say what to do on a conflict (``on_conflict_do_update``/``_do_nothing``)."""
        return postgresql.insert(table) if self.shared else sqlite_dialect.insert(table)

    def joined(self, value: ColumnElement[int]) -> ColumnElement[str]:
        """An aggregate of a group's values as one comma-separated string (SQLite's group_concat)."""
        if self.shared:
            return sa.func.string_agg(sa.cast(value, sa.Text), ",")
        return sa.func.group_concat(value)

    def intact(self, tables: Sequence[Table]) -> bool:
        """Whether the tables read back whole: SQLite's integrity check of the file; on PostgreSQL, which checks
        its own pages, every row of each table read (a damaged page fails the read). A PostgreSQL that does not
        answer is ``StoreUnavailable``, not damage."""
        try:
            with self.begin() as connection:
                if not self.shared:
                    return connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
                for table in tables:
                    connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        except exc.DatabaseError:
            return False
        return True

    def advisory_lock(self, key: int, wait_s: float = 0.0) -> Connection | None:
        """PostgreSQL's session advisory lock ``key``, tried until ``wait_s`` has passed (once by default), on a
        connection of its own: that connection while the lock is held (closing it lets the lock go), None where
        another session holds it.

        The connection leaves the pool, so closing it ends its session and no pooled user inherits a held lock;
        it runs in autocommit, so no transaction stays open as long as the lock (which would hold vacuum back).
        PostgreSQL drops the lock with the session: at once when its holder dies (the kernel closes the
        socket), and, by the short keepalives set here, within about a minute when its machine vanishes."""
        assert self.shared, "advisory locks are PostgreSQL's"
        deadline = time.monotonic() + wait_s
        with self._reachable():
            connection = self.engine.connect()
            try:
                connection.execution_options(isolation_level="AUTOCOMMIT")
                connection.detach()
                for setting, value in _LOCK_KEEPALIVES:
                    connection.exec_driver_sql(f"SET {setting} = {value}")
                trying = sa.text("SELECT pg_try_advisory_lock(:key)").bindparams(key=key)
                while not connection.execute(trying).scalar():
                    if time.monotonic() >= deadline:
                        connection.close()
                        return None
                    time.sleep(_LOCK_RETRY_S)
            except BaseException:
                connection.close()
                raise
        return connection

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection in one transaction: committed on success, rolled back on error."""
        with self._reachable(), self.engine.begin() as connection:
            yield connection

    @contextmanager
    def exclusive(self, key: int, wait_s: float = _SQLITE_TIMEOUT_S) -> Iterator[Connection]:
        """A transaction that holds a writer's lock from its start, so writers of one store go one at a time
        and each re-reads what the previous one committed: SQLite's write lock (BEGIN IMMEDIATE, waiting up to
        ``wait_s`` for another writer), or PostgreSQL's advisory transaction lock ``key`` (waited for as long
        as its holder takes: a reader is never blocked by it, so a long writer holds back only writers)."""
        with self._reachable(), self.engine.connect() as connection:
            if self.shared:
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            else:
                connection.exec_driver_sql(f"PRAGMA busy_timeout = {round(wait_s * 1000)}")
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.rollback()
                raise
            connection.commit()

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        """A PostgreSQL that is down or restarting is ``StoreUnavailable`` (503 with Retry-After), not a 500:
        the replica recovers by itself once it answers again (the pool pings before it hands a connection out).
        SQLite's errors pass as they always have."""
        try:
            yield
        except (exc.OperationalError, exc.InterfaceError) as error:
            if not self.shared:
                raise
            raise StoreUnavailable(f"the database does not answer ({type(error.orig).__name__})") from error

    def migrate(self, branch: Branch) -> None:
        """Bring ``branch``'s tables to its newest revision: at once where they are there already; else under
        a lock (PostgreSQL's advisory lock, SQLite's write lock), so two processes starting together upgrade
        one after the other and the second finds nothing to do."""
        head = _scripts().get_revision(f"{branch}@head")
        assert head is not None, f"no migrations for {branch}"
        with self._reachable(), self.engine.connect() as connection:
            if head.revision in MigrationContext.configure(connection).get_current_heads():
                return
            if not self.shared:
                _wal(connection)
        with self.exclusive(_MIGRATION_LOCK) as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, f"{branch}@head")


def insert_rows(connection: Connection, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
    """Many rows, each with every column of ``table`` in its order, through the driver's executemany: for the
    bulk of a write (the BM25 index's postings), where SQLAlchemy's handling of each row's parameters costs
    half the time on SQLite (9.5 s against 4.8 s for 756k postings) and a third on PostgreSQL (21 s, 15 s)."""
    if not rows:
        return
    compiled = sa.insert(table).compile(dialect=connection.dialect)
    if compiled.positional:  # SQLite's ?
        assert compiled.positiontup == list(table.c.keys())
        connection.exec_driver_sql(compiled.string, list(rows))
    else:  # psycopg's %(name)s
        names = list(table.c.keys())
        connection.exec_driver_sql(compiled.string, [dict(zip(names, row, strict=True)) for row in rows])


def sqlite_database(path: Path) -> Database:
    """The embedded store of one SQLite file (created with its folder where missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        sa.URL.create("sqlite", database=str(path)),
        poolclass=NullPool,
        connect_args={"timeout": _SQLITE_TIMEOUT_S},
    )
    event.listen(engine, "connect", _sqlite_foreign_keys)
    return Database(engine)


def shared_database(url: str) -> Database:
    """The process's one pooled engine on the PostgreSQL database at ``url``."""
    with _shared_lock:
        if url not in _shared:
            engine = sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": _CONNECT_TIMEOUT_S})
            _shared[url] = Database(engine)
        return _shared[url]


def database_for(settings: Settings, path: Path) -> Database:
    """Where a store of these settings keeps its tables: the shared database where one is set, else ``path``."""
    if settings.database_url is not None:
        return shared_database(settings.database_url.get_secret_value())
    return sqlite_database(path)


def dispose_shared() -> None:
    """Close every pooled connection (tests, between databases)."""
    with _shared_lock:
        for database in _shared.values():
            database.engine.dispose()
        _shared.clear()


def opened(where: Path | Database, branch: Branch) -> Database:
    """A store's database, its tables brought up to date: a path is a SQLite file of the embedded default."""
    database = sqlite_database(where) if isinstance(where, Path) else where
    database.migrate(branch)
    return database


def _wal(connection: Connection) -> None:
    """WAL is a property of the file, set once, never inside a transaction. Setting it needs the file to
    itself: a process that meets another one's migration in the middle is refused at once (SQLite's deadlock
    rule, no busy wait), so it tries again a little later."""
    for attempt in itertools.count():
        try:
            if connection.exec_driver_sql("PRAGMA journal_mode").scalar() != "wal":
                connection.exec_driver_sql("PRAGMA journal_mode=WAL")
            connection.commit()
            return
        except exc.OperationalError as error:
            connection.rollback()
            if "locked" not in str(error.orig) or attempt >= _WAL_ATTEMPTS:
                raise
            time.sleep(0.05)


def _sqlite_foreign_keys(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@cache
def _scripts() -> ScriptDirectory:
    """The migrations, read once per process."""
    return ScriptDirectory(str(MIGRATIONS))
