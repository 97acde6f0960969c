"""What is the index's own: the upgrade of an old SQLite file, snapshots, postings read once, handles in other
processes (API replicas on PostgreSQL) that see each other's writes and rebuild a stale index once. What every
lexical store does is in ``tests/contracts/lexical_store.py``."""

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from backend.core.errors import IndexStale
from backend.core.text import ANALYZER_VERSION, content_terms
from backend.core.types import Chunk, SearchQuery
from backend.store.db import Database, sqlite_database
from backend.store.lexical import LexicalIndex


def _chunk(cid: str, text: str, source: str | None = None, day: datetime | None = None) -> Chunk:
    return Chunk(id=cid, article_id=cid.split(":")[0], position=0, text=text, source=source, published_at=day)


_V1_SCHEMA = """
CREATE TABLE docs (chunk_id TEXT PRIMARY KEY, article_id TEXT NOT NULL, length INTEGER NOT NULL,
    published_ts INTEGER NOT NULL, dated INTEGER NOT NULL, source_key TEXT NOT NULL);
CREATE TABLE postings (term TEXT NOT NULL, chunk_id TEXT NOT NULL, tf INTEGER NOT NULL,
    PRIMARY KEY (term, chunk_id)) WITHOUT ROWID;
CREATE INDEX postings_chunk ON postings(chunk_id);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta VALUES ('version', 7);
INSERT INTO docs VALUES ('a:0', 'a', 3, 1696377600, 1, 'northern-dispatch'), ('b:0', 'b', 2, 0, 0, '');
INSERT INTO postings VALUES ('qaratapa', 'a:0', 2), ('sector', 'a:0', 1), ('sector', 'b:0', 1), ('calm', 'b:0', 1);
"""


def test_an_index_written_before_doc_numbers_is_upgraded_in_place(tmp_path: Path) -> None:
    """Indexes from earlier versions keyed postings by chunk id; opening one converts it, keeping every
    posting, so a server upgraded over an existing archive searches it at once (no rebuild from Chroma):
    its terms are the first analyzer's, which is still today's."""
    path = tmp_path / "lexical.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(_V1_SCHEMA)
    index = LexicalIndex(path)
    assert index.ids() == {"a:0", "b:0"} and index.version() == 8  # readers of the old snapshot reload
    assert index.analyzer_version() == 1 and not index.stale
    ranked = index.search(SearchQuery("Qaratapa sector"), 10)
    assert [cid for cid, _ in ranked] == ["a:0", "b:0"] and ranked[0][1] > ranked[1][1] > 0
    assert [cid for cid, _ in index.search(SearchQuery("sector", as_of=date(2023, 10, 3)), 10)] == ["b:0"]
    index.add([_chunk("c:0", "calm sector again")])
    index.delete(["b:0"])
    assert {cid for cid, _ in index.search(SearchQuery("calm"), 10)} == {"c:0"}
    LexicalIndex(path)  # opening an upgraded index again changes nothing
    assert index.ids() == {"a:0", "c:0"}


def test_an_index_of_another_analyzer_is_never_queried_and_is_rebuilt_once(tmp_path: Path) -> None:
    path = tmp_path / "lexical.sqlite3"
    chunks = [_chunk("a:0", "The commanders commanded the closures"), _chunk("b:0", "a store closure downtown")]
    index = LexicalIndex(path)
    assert not index.stale and index.analyzer_version() == ANALYZER_VERSION  # a new index is current
    index.add(chunks)
    expected = index.search(SearchQuery("Which commander ordered the store closure?"), 10)
    assert {cid for cid, _ in expected} == {"a:0", "b:0"}
    with sqlite3.connect(path) as db:  # as if written by another Byline
        db.execute("UPDATE lexical_meta SET value = ? WHERE key = 'analyzer'", (ANALYZER_VERSION + 1,))
    reopened = LexicalIndex(path)
    assert reopened.stale
    with pytest.raises(IndexStale):
        reopened.search(SearchQuery("commander"), 10)
    read: list[int] = []

    def source() -> list[Chunk]:
        read.append(1)
        return chunks

    assert reopened.ensure_current(source) and not reopened.ensure_current(source) and read == [1]
    assert reopened.search(SearchQuery("Which commander ordered the store closure?"), 10) == expected
    reopened.clear()  # an emptied index holds no terms of any analyzer: current
    assert not reopened.stale and reopened.count() == 0


def test_a_snapshot_ignores_docs_written_after_it_and_doc_numbers_are_never_reused(tmp_path: Path) -> None:
    index = LexicalIndex(tmp_path / "lexical.sqlite3")
    index.add([_chunk("a:0", "ferry timetable"), _chunk("b:0", "ferry fares")])
    snapshot = index._snapshot()
    index.add([_chunk("b:0", "ferry fares rise")])  # a replacement: a new doc number for b:0
    index.add([_chunk("c:0", "ferry crews")])
    # Postings read for the old snapshot skip docs it does not know instead of mislabelling them.
    ((rows, _),) = index._postings(snapshot, content_terms("ferry"))
    assert sorted(snapshot.ids[r] for r in rows) == ["a:0"]
    with sqlite3.connect(tmp_path / "lexical.sqlite3") as db:
        numbers = [r[0] for r in db.execute("SELECT doc FROM lexical_docs ORDER BY doc")]
    assert numbers == [1, 3, 4]
    assert {cid for cid, _ in index.search(SearchQuery("ferry"), 10)} == {"a:0", "b:0", "c:0"}


def test_a_question_reads_its_new_terms_through_one_connection(tmp_path: Path) -> None:
    index = LexicalIndex(tmp_path / "lexical.sqlite3")
    index.add([_chunk("a:0", "ferry timetable harbour"), _chunk("b:0", "ferry fares")])
    index.warm()
    opened = []
    reading = index._reading

    def counting() -> AbstractContextManager[Any]:
        opened.append(1)
        return reading()

    index._reading = counting  # type: ignore[method-assign]
    first = index.search(SearchQuery("ferry timetable harbour fares"), 10)
    assert len(opened) == 2  # the version check, then the four terms' postings
    assert index.search(SearchQuery("ferry timetable harbour fares"), 10) == first
    assert len(opened) == 3  # postings from memory: only the version check
    assert [cid for cid, _ in first] == ["a:0", "b:0"]


@contextmanager
def _handles(where: Path | str, n: int) -> Iterator[list[LexicalIndex]]:
    """``n`` handles on one index as separate processes hold them: each its own engine (a SQLite file, or a
    PostgreSQL database as API replicas share it)."""
    databases = [
        sqlite_database(where) if isinstance(where, Path) else Database(sa.create_engine(where)) for _ in range(n)
    ]
    try:
        yield [LexicalIndex(database) for database in databases]
    finally:
        for database in databases:
            database.engine.dispose()


@pytest.mark.integration
def test_two_replicas_on_postgresql_see_each_others_writes_at_once(postgres_url: str) -> None:
    with _handles(postgres_url, 2) as (a, b):
        a.warm()
        b.warm()
        b.add([_chunk("a:0", "Mardan Salih commands the Qaratapa sector."), _chunk("b:0", "The sector was calm.")])
        assert [cid for cid, _ in a.search(SearchQuery("Qaratapa sector"), 10)] == ["a:0", "b:0"]
        a.delete(["a:0"])
        assert [cid for cid, _ in b.search(SearchQuery("Qaratapa sector"), 10)] == ["b:0"]
        a.rebuild([_chunk("c:0", "Ferry timetable for the harbour.")])
        assert b.ids() == {"c:0"} and [cid for cid, _ in b.search(SearchQuery("ferry"), 10)] == ["c:0"]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def test_processes_that_find_the_index_stale_together_rebuild_it_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The first rebuilds; the others wait for its transaction (SQLite's write lock, PostgreSQL's advisory
    lock), then find the index current."""
    where = tmp_path / "lexical.sqlite3" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    read: list[int] = []
    done: list[bool] = []

    def source() -> list[Chunk]:
        read.append(1)
        time.sleep(0.5)  # the others meanwhile wait for the lock
        return [_chunk("a:0", "ferry timetable")]

    with _handles(where, 3) as handles:
        handles[0].add([_chunk("a:0", "ferry timetable")])
        with handles[0]._writing() as db:  # as if written by another Byline
            db.execute(sa.text("UPDATE lexical_meta SET value = value + 1 WHERE key = 'analyzer'"))
        assert all(h.stale for h in handles)
        start = threading.Barrier(len(handles))

        def ensure(index: LexicalIndex) -> None:
            start.wait()
            done.append(index.ensure_current(source))

        threads = [threading.Thread(target=ensure, args=(h,)) for h in handles]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(done) == [False, False, True] and read == [1]
        assert all(not h.stale and h.ids() == {"a:0"} for h in handles)
