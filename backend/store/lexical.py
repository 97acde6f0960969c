"""The lexical (BM25) index beside Chroma: postings per term, updated with every ingest batch.

Its tables are in ``lexical.sqlite3`` in the data directory, or in the shared PostgreSQL database
(``backend.store.db``), where every API replica reads the one index an ingest writes.

It describes exactly the chunks Chroma holds: ingest adds and removes chunks in both, and a run
that finds the two counts apart rebuilds this one from Chroma (after a crash between the two
writes, or for an archive ingested before the index existed).

Queries run in memory: each process loads the per-chunk columns once (a few numpy arrays) and
the postings of a term the first time a question uses it, then scores with numpy. Every write
bumps a version number in the same transaction; a reader that sees a new version drops what it
loaded and loads again on demand, so an API process (or replica) picks up what an ingest process wrote.

The index records the version of the analyzer that made its terms (``ANALYZER_VERSION``). One made by
another version is never queried: ``search`` raises ``IndexStale`` until ``rebuild`` has re-read the
chunks, which the server does when it starts and an ingest run does before it writes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import sqlite as sqlite_dialect

from backend.core.dates import end_of_day, start_of_day
from backend.core.errors import IndexStale
from backend.core.text import ANALYZER_VERSION, content_terms, source_key, source_keys
from backend.core.types import Chunk, SearchQuery
from backend.store import schema
from backend.store.db import Database, insert_rows, opened

# Indexes written before the analyzer was recorded were made by its first version (five English suffixes).
_FIRST_ANALYZER = 1
# A rebuild holds the write lock for as long as re-reading every chunk takes (minutes at 200k chunks).
_REBUILD_WAIT_S = 1800.0
_WRITE_WAIT_S = 30.0
# pg_advisory_xact_lock's key for the index's writers ("LEXICAL" in ASCII): one writes at a time, as on SQLite.
_WRITE_LOCK = 0x4C45584943414C
_BATCH = 500  # chunks written per statement, and chunk ids per IN list

K1, B = 1.5, 0.75  # the usual BM25 constants
# Length normalisation counts a passage as at least this many terms by default: below it, BM25 rewards
# brevity without bound (a one-word post scored above every article naming the word three times).
MIN_LENGTH = 20


def terms_of(chunk: Chunk) -> list[str]:
    """Title words count too: a question often names what the headline names."""
    return content_terms(f"{chunk.title}\n{chunk.text}")


class LexicalIndex:
    def __init__(self, where: Path | Database) -> None:
        """``where``: the SQLite file of the embedded default, or the shared database."""
        self._db = opened(where, "lexical")
        self._lock = threading.Lock()
        self._loaded: _Snapshot | None = None
        # One string per term, parsed by numpy: three times faster than a row per posting for common terms.
        # The code fits 64 bits on both backends (PostgreSQL's doc is a 32-bit integer until cast).
        tf = schema.lexical_postings.c.tf
        code = sa.cast(schema.lexical_postings.c.doc, sa.BigInteger) * 65536 + sa.case((tf > 65535, 65535), else_=tf)
        self._packed = sa.select(self._db.joined(code)).where(schema.lexical_postings.c.term == sa.bindparam("term"))
        # Where the index is a SQLite file, a search reads it through the driver (see ``_reading``).
        self._file = None if self._db.shared else self._db.engine.url.database
        self._compiled: dict[sa.Select[Any], tuple[str, dict[str, Any]]] = {}
        # The version and analyzer rows are written here where missing, not by the migration, so a new database's
        # tables stay empty until the index is opened (byline db import copies into empty ones).
        with self._db.begin() as db:
            found = dict(db.execute(_STATE).all())
            missing: dict[str, int] = {}
            if "version" not in found:
                missing["version"] = 0
            if "analyzer" not in found:
                empty = db.execute(sa.select(schema.lexical_docs.c.doc).limit(1)).first() is None
                missing["analyzer"] = ANALYZER_VERSION if empty else _FIRST_ANALYZER
            for key, value in missing.items():
                # Another process opening the index meanwhile may have written it first: the same value.
                db.execute(self._db.insert(schema.lexical_meta).values(key=key, value=value).on_conflict_do_nothing())

    def add(self, chunks: Iterable[Chunk]) -> None:
        """Add or replace chunks (by id)."""
        with self._writing() as db:
            self._add(db, chunks)
            db.execute(_BUMP)

    def delete(self, chunk_ids: Sequence[str]) -> None:
        if not chunk_ids:
            return
        with self._writing() as db:
            _remove(db, chunk_ids)
            db.execute(_BUMP)

    def mark_pending(self) -> None:
        """Say, durably, that the vector store is about to change before this index follows (see ``pending``)."""
        with self._writing() as db:
            self._set(db, "pending", 1)

    def settle(self) -> None:
        """Say that this index has followed the vector store's last change."""
        with self._writing() as db:
            self._set(db, "pending", 0)

    @property
    def pending(self) -> bool:
        """True between ``mark_pending`` and ``settle`` (or a rebuild): a writer died between the vector store's
        write and this index's, so the two may differ even where their counts agree. Kept in the index's own
        table, so every replica sharing the database sees it, not only the one whose writer died."""
        with self._db.begin() as db:
            value = db.execute(_PENDING).scalar_one_or_none()
        return bool(value)

    def clear(self) -> None:
        with self._writing() as db:
            db.execute(sa.delete(schema.lexical_postings))
            db.execute(sa.delete(schema.lexical_docs))
            self._set_analyzer(db)
            db.execute(_BUMP)

    def rebuild(self, chunks: Iterable[Chunk]) -> None:
        """Every chunk's terms made again with this analyzer, in one transaction: readers see the old index
        or the new one, never half of it."""
        with self._writing(_REBUILD_WAIT_S) as db:
            self._rebuild(db, chunks)

    def ensure_current(self, chunks: Callable[[], Iterable[Chunk]]) -> bool:
        """Rebuild from ``chunks()`` when the index was made by another analyzer; True when it did.

        Two processes that open a stale index (a server and an ingest run, or two replicas) do not both
        rebuild: the second waits for the first's transaction, then finds the index current."""
        if not self.stale:
            return False
        with self._writing(_REBUILD_WAIT_S) as db:
            if db.execute(_ANALYZER).scalar_one() == ANALYZER_VERSION:
                return False
            self._rebuild(db, chunks())
        return True

    def analyzer_version(self) -> int:
        """The version of the analyzer whose terms the index holds."""
        with self._db.begin() as db:
            return int(db.execute(_ANALYZER).scalar_one())

    @property
    def stale(self) -> bool:
        """True when the index's terms were made by another analyzer than this process's: rebuild it."""
        return self.analyzer_version() != ANALYZER_VERSION

    def count(self) -> int:
        with self._db.begin() as db:
            return int(db.execute(sa.select(sa.func.count()).select_from(schema.lexical_docs)).scalar_one())

    def ids(self) -> set[str]:
        with self._db.begin() as db:
            return set(db.execute(sa.select(schema.lexical_docs.c.chunk_id)).scalars())

    def version(self) -> int:
        with self._db.begin() as db:
            return int(db.execute(_VERSION).scalar_one())

    def warm(self) -> None:
        """Load the per-chunk columns now (a server does it before its first question)."""
        self._snapshot()

    def search(self, query: SearchQuery, k: int, min_length: int = MIN_LENGTH) -> list[tuple[str, float]]:
        """Chunk ids with BM25 scores, best first, among the chunks the query's filters allow.

        ``min_length``: the fewest terms a passage counts as in length normalisation (0: plain BM25)."""
        terms = sorted(set(content_terms(query.text)))
        if not terms:
            return []
        snapshot = self._snapshot()
        if not snapshot.size:
            return []
        scores = np.zeros(snapshot.size, dtype=np.float32)
        for rows, tf in self._postings(snapshot, terms):
            idf = np.log(1.0 + (snapshot.size - len(rows) + 0.5) / (len(rows) + 0.5))
            length = np.maximum(snapshot.length[rows], min_length)
            norm = K1 * (1.0 - B + B * length / max(snapshot.average, min_length))
            scores[rows] += idf * tf * (K1 + 1.0) / (tf + norm)
        allowed = _mask(snapshot, query) & (scores > 0)
        candidates = np.flatnonzero(allowed)
        if len(candidates) > k:
            candidates = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        ranked = sorted(candidates.tolist(), key=lambda i: (-scores[i], snapshot.ids[i]))
        return [(snapshot.ids[i], float(scores[i])) for i in ranked]

    @contextmanager
    def _writing(self, wait_s: float = _WRITE_WAIT_S) -> Iterator[Connection]:
        """A write transaction that holds the index's write lock from its start: writers go one at a time."""
        with self._db.exclusive(_WRITE_LOCK, wait_s) as db:
            yield db

    def _snapshot(self) -> _Snapshot:
        """The loaded columns, reloaded when another process (or this one) has written since."""
        with self._reading() as read:
            meta = dict(read(_STATE, {}))
        if meta["analyzer"] != ANALYZER_VERSION:
            raise IndexStale(
                f"the lexical index was built by analyzer version {meta['analyzer']}, this server reads questions"
                f" with version {ANALYZER_VERSION}: it is rebuilt when the server or an ingest run starts"
            )
        version = int(meta["version"])
        with self._lock:
            if self._loaded is None or self._loaded.version != version:
                with self._reading() as read:
                    self._loaded = _load(read(_COLUMNS, {}), version)
            return self._loaded

    def _postings(self, snapshot: _Snapshot, terms: Sequence[str]) -> list[_Postings]:
        """The non-empty postings of these terms: from memory, the others read through one connection."""
        found: dict[str, _Postings] = {}
        missing: list[str] = []
        with self._lock:
            for term in terms:
                cached = snapshot.postings.get(term)
                if cached is None:
                    missing.append(term)
                else:
                    snapshot.postings.move_to_end(term)
                    found[term] = cached
        if missing:
            with self._reading() as read:
                packed = [read(self._packed, {"term": term})[0][0] for term in missing]
            loaded = [_parse(snapshot, p) for p in packed]
            with self._lock:
                for term, postings in zip(missing, loaded, strict=True):
                    snapshot.postings[term] = postings
                while len(snapshot.postings) > _CACHED_TERMS:
                    snapshot.postings.popitem(last=False)
            found.update(zip(missing, loaded, strict=True))
        # In the order asked: float sums, and so ties in the ranking, do not depend on what was cached.
        return [found[t] for t in terms if len(found[t][0])]

    @contextmanager
    def _reading(self) -> Iterator[_Read]:
        """One connection for a search's reads: ``read(statement, parameters)`` gives its rows.

        A SQLite file is read through the driver, with the SQL SQLAlchemy compiles from the same statements
        (once per statement): SQLAlchemy's connection and execution cost 0.3 to 0.4 ms more per connection
        than sqlite3's, a quarter of a search whose postings are in memory (1.4 ms at 50k chunks). PostgreSQL's
        reads go through SQLAlchemy, whose cost there is small beside a round trip to the server."""
        if self._file is None:
            with self._db.begin() as db:
                yield lambda statement, parameters: db.execute(statement, parameters).all()
            return
        connection = sqlite3.connect(self._file, timeout=_WRITE_WAIT_S)
        try:
            yield lambda statement, parameters: connection.execute(*self._sqlite(statement, parameters)).fetchall()
        finally:
            connection.close()

    def _sqlite(self, statement: sa.Select[Any], parameters: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if statement not in self._compiled:
            compiled = statement.compile(dialect=_NAMED_SQLITE)
            self._compiled[statement] = (compiled.string, dict(compiled.params))
        sql, constants = self._compiled[statement]
        return sql, {**constants, **parameters}

    def _set_analyzer(self, db: Connection) -> None:
        self._set(db, "analyzer", ANALYZER_VERSION)

    def _set(self, db: Connection, key: str, value: int) -> None:
        row = self._db.insert(schema.lexical_meta).values(key=key, value=value)
        db.execute(
            row.on_conflict_do_update(index_elements=[schema.lexical_meta.c.key], set_={"value": row.excluded.value})
        )

    def _rebuild(self, db: Connection, chunks: Iterable[Chunk]) -> None:
        db.execute(sa.delete(schema.lexical_postings))
        db.execute(sa.delete(schema.lexical_docs))
        self._add(db, chunks)
        self._set_analyzer(db)
        self._set(db, "pending", 0)  # the index now describes the vector store as it is
        db.execute(_BUMP)

    def _add(self, db: Connection, chunks: Iterable[Chunk]) -> None:
        """Written a batch at a time: a statement per batch, not per chunk, which PostgreSQL's round trips
        would make slow. A chunk listed twice is stored as its last listing."""
        batch: dict[str, tuple[Chunk, Counter[str]]] = {}
        for chunk in chunks:
            batch[chunk.id] = (chunk, Counter(terms_of(chunk)))
            if len(batch) >= _BATCH:
                _write(db, batch)
                batch = {}
        if batch:
            _write(db, batch)


def _write(db: Connection, batch: dict[str, tuple[Chunk, Counter[str]]]) -> None:
    docs, ids = schema.lexical_docs, list(batch)
    _remove(db, ids)
    db.execute(
        sa.insert(docs),
        [
            {
                "chunk_id": chunk.id,
                "article_id": chunk.article_id,
                "length": sum(counts.values()),
                "published_ts": int(chunk.published_at.timestamp()) if chunk.published_at else 0,
                "dated": int(chunk.published_at is not None),
                "source_key": source_key(chunk.source or ""),
            }
            for chunk, counts in batch.values()
        ],
    )
    doc_of = dict(db.execute(sa.select(docs.c.chunk_id, docs.c.doc).where(docs.c.chunk_id.in_(ids))).all())
    postings = [(term, doc_of[chunk_id], n) for chunk_id, (_, counts) in batch.items() for term, n in counts.items()]
    insert_rows(db, schema.lexical_postings, postings)


def _remove(db: Connection, chunk_ids: Sequence[str]) -> None:
    docs, postings = schema.lexical_docs, schema.lexical_postings
    for start in range(0, len(chunk_ids), _BATCH):
        part = list(chunk_ids[start : start + _BATCH])
        db.execute(
            sa.delete(postings).where(postings.c.doc.in_(sa.select(docs.c.doc).where(docs.c.chunk_id.in_(part))))
        )
        db.execute(sa.delete(docs).where(docs.c.chunk_id.in_(part)))


_VERSION = sa.select(schema.lexical_meta.c.value).where(schema.lexical_meta.c.key == "version")
_ANALYZER = sa.select(schema.lexical_meta.c.value).where(schema.lexical_meta.c.key == "analyzer")
_PENDING = sa.select(schema.lexical_meta.c.value).where(schema.lexical_meta.c.key == "pending")
_STATE = sa.select(schema.lexical_meta.c.key, schema.lexical_meta.c.value)  # version, analyzer, pending mark
_BUMP = (
    sa.update(schema.lexical_meta)
    .where(schema.lexical_meta.c.key == "version")
    .values(value=schema.lexical_meta.c.value + 1)
)
_COLUMNS = sa.select(
    *(schema.lexical_docs.c[name] for name in ("doc", "chunk_id", "length", "published_ts", "dated", "source_key"))
)


def _parse(snapshot: _Snapshot, packed: str | None) -> _Postings:
    """Packed ``doc * 65536 + tf`` codes as rows of the snapshot's arrays and term frequencies."""
    codes = np.fromstring(packed, dtype=np.int64, sep=",") if packed else np.zeros(0, dtype=np.int64)
    docs = codes >> 16
    rows = np.full(len(docs), -1, dtype=np.int64)
    known = docs < len(snapshot.row_of_doc)  # a doc written after the snapshot is not in it
    rows[known] = snapshot.row_of_doc[docs[known]]
    inside = rows >= 0
    return rows[inside], (codes[inside] & 0xFFFF).astype(np.float32)


_Read = Callable[[sa.Select[Any], dict[str, Any]], Sequence[Any]]
_NAMED_SQLITE = sqlite_dialect.dialect(paramstyle="named")  # parameters by name, as sqlite3 takes them
_CACHED_TERMS = 50_000  # postings lists kept in memory per process; the rarest are most of them
_Postings = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]  # rows of a snapshot, term frequencies


@dataclass(slots=True)
class _Snapshot:
    version: int
    ids: list[str]
    row_of_doc: npt.NDArray[np.int64]  # doc number -> row in these arrays, -1 for none
    length: npt.NDArray[np.float32]
    published_ts: npt.NDArray[np.int64]
    dated: npt.NDArray[np.bool_]
    source: npt.NDArray[np.int32]  # index into source_codes
    source_codes: dict[str, int]
    average: float
    postings: OrderedDict[str, _Postings] = field(default_factory=OrderedDict)

    @property
    def size(self) -> int:
        return len(self.ids)


def _load(rows: Sequence[Any], version: int) -> _Snapshot:
    codes: dict[str, int] = {}
    docs = np.array([r[0] for r in rows], dtype=np.int64)
    row_of_doc = np.full(int(docs.max()) + 1 if len(docs) else 0, -1, dtype=np.int64)
    row_of_doc[docs] = np.arange(len(docs))
    length = np.array([r[2] for r in rows], dtype=np.float32)
    return _Snapshot(
        version=version,
        ids=[r[1] for r in rows],
        row_of_doc=row_of_doc,
        length=length,
        published_ts=np.array([r[3] for r in rows], dtype=np.int64),
        dated=np.array([bool(r[4]) for r in rows], dtype=np.bool_),
        source=np.array([codes.setdefault(r[5], len(codes)) for r in rows], dtype=np.int32),
        source_codes=codes,
        average=float(length.mean()) if len(rows) else 0.0,
    )


def _mask(s: _Snapshot, query: SearchQuery) -> npt.NDArray[np.bool_]:
    """The same filters as the vector store's, over the loaded columns."""
    keep = np.ones(s.size, dtype=np.bool_)
    if query.as_of is not None:
        keep &= (s.published_ts <= end_of_day(query.as_of)) | ~s.dated
    f = query.filters
    if f.published_after is not None:
        keep &= s.dated & (s.published_ts >= start_of_day(f.published_after))
    if f.published_before is not None:
        keep &= s.dated & (s.published_ts <= end_of_day(f.published_before))
    if f.sources:
        wanted = [s.source_codes[key] for key in source_keys(f.sources) if key in s.source_codes]
        keep &= np.isin(s.source, wanted)
    return keep
