"""The lexical (BM25) index, in SQLite beside Chroma: postings per term, updated with every ingest batch.

It describes exactly the chunks Chroma holds: ingest adds and removes chunks in both, and a run
that finds the two counts apart rebuilds this one from Chroma (after a crash between the two
writes, or for an archive ingested before the index existed).

Queries run in memory: each process loads the per-chunk columns once (a few numpy arrays) and
the postings of a term the first time a question uses it, then scores with numpy. Every write
bumps a version number in the same transaction; a reader that sees a new version drops what it
loaded and loads again on demand, so an API process picks up what an ingest process wrote.

The index records the version of the analyzer that made its terms (``ANALYZER_VERSION``). One made by
another version is never queried: ``search`` raises ``IndexStale`` until ``rebuild`` has re-read the
chunks, which the server does when it starts and an ingest run does before it writes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from backend.core.dates import end_of_day, start_of_day
from backend.core.errors import IndexStale
from backend.core.text import ANALYZER_VERSION, content_terms, source_key, source_keys
from backend.core.types import Chunk, SearchQuery
from backend.store import sqlite

# Postings name a chunk by an integer ``doc`` number, never reused (AUTOINCREMENT), so a process turns a
# term's postings into array rows with one numpy lookup instead of a dictionary lookup per chunk id.
_TABLES = [
    """CREATE TABLE IF NOT EXISTS docs (
        doc INTEGER PRIMARY KEY AUTOINCREMENT,
        chunk_id TEXT NOT NULL UNIQUE,
        article_id TEXT NOT NULL,
        length INTEGER NOT NULL,
        published_ts INTEGER NOT NULL,
        dated INTEGER NOT NULL,
        source_key TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS postings (
        term TEXT NOT NULL,
        doc INTEGER NOT NULL,
        tf INTEGER NOT NULL,
        PRIMARY KEY (term, doc)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS postings_doc ON postings(doc)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO meta VALUES ('version', 0)",
]
_SCHEMA = ";\n".join(_TABLES) + ";"

_BUMP = "UPDATE meta SET value = value + 1 WHERE key = 'version'"
_ANALYZER = "INSERT OR REPLACE INTO meta VALUES ('analyzer', ?)"
# Indexes written before the analyzer was recorded were made by its first version (five English suffixes).
_FIRST_ANALYZER = 1
# A rebuild holds the write lock for as long as re-reading every chunk takes (minutes at 200k chunks).
_REBUILD_WAIT_S = 1800.0

K1, B = 1.5, 0.75  # the usual BM25 constants
# Length normalisation counts a passage as at least this many terms by default: below it, BM25 rewards
# brevity without bound (a one-word post scored above every article naming the word three times).
MIN_LENGTH = 20


def terms_of(chunk: Chunk) -> list[str]:
    """Title words count too: a question often names what the headline names."""
    return content_terms(f"{chunk.title}\n{chunk.text}")


class LexicalIndex(sqlite.SqliteStore):
    schema = _SCHEMA

    def __init__(self, path: Path) -> None:
        _upgrade(path)
        super().__init__(path)
        self._lock = threading.Lock()
        self._loaded: _Snapshot | None = None
        with self._connect() as db:
            if db.execute("SELECT 1 FROM meta WHERE key = 'analyzer'").fetchone() is None:
                empty = db.execute("SELECT 1 FROM docs LIMIT 1").fetchone() is None
                db.execute(_ANALYZER, (ANALYZER_VERSION if empty else _FIRST_ANALYZER,))

    def add(self, chunks: Iterable[Chunk]) -> None:
        """Add or replace chunks (by id)."""
        with self._connect() as db:
            _add(db, chunks)
            db.execute(_BUMP)

    def delete(self, chunk_ids: Sequence[str]) -> None:
        if not chunk_ids:
            return
        with self._connect() as db:
            _remove(db, chunk_ids)
            db.execute(_BUMP)

    def clear(self) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM postings")
            db.execute("DELETE FROM docs")
            db.execute(_ANALYZER, (ANALYZER_VERSION,))
            db.execute(_BUMP)

    def rebuild(self, chunks: Iterable[Chunk]) -> None:
        """Every chunk's terms made again with this analyzer, in one transaction: readers see the old index
        or the new one, never half of it."""
        with sqlite.connect(self._path, timeout=_REBUILD_WAIT_S) as db:
            db.execute("BEGIN IMMEDIATE")
            _rebuild(db, chunks)

    def ensure_current(self, chunks: Callable[[], Iterable[Chunk]]) -> bool:
        """Rebuild from ``chunks()`` when the index was made by another analyzer; True when it did.

        Two processes that open a stale index (a server and an ingest run) do not both rebuild: the second
        waits for the first's transaction, then finds the index current."""
        if not self.stale:
            return False
        with sqlite.connect(self._path, timeout=_REBUILD_WAIT_S) as db:
            db.execute("BEGIN IMMEDIATE")
            if db.execute("SELECT value FROM meta WHERE key = 'analyzer'").fetchone()[0] == ANALYZER_VERSION:
                return False
            _rebuild(db, chunks())
        return True

    def analyzer_version(self) -> int:
        """The version of the analyzer whose terms the index holds."""
        with self._connect() as db:
            return int(db.execute("SELECT value FROM meta WHERE key = 'analyzer'").fetchone()[0])

    @property
    def stale(self) -> bool:
        """True when the index's terms were made by another analyzer than this process's: rebuild it."""
        return self.analyzer_version() != ANALYZER_VERSION

    def count(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM docs").fetchone()[0])

    def ids(self) -> set[str]:
        with self._connect() as db:
            return {r[0] for r in db.execute("SELECT chunk_id FROM docs")}

    def version(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])

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

    def _snapshot(self) -> _Snapshot:
        """The loaded columns, reloaded when another process (or this one) has written since."""
        with self._connect() as db:
            meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('version', 'analyzer')").fetchall())
        if meta["analyzer"] != ANALYZER_VERSION:
            raise IndexStale(
                f"the lexical index was built by analyzer version {meta['analyzer']}, this server reads questions"
                f" with version {ANALYZER_VERSION}: it is rebuilt when the server or an ingest run starts"
            )
        version = int(meta["version"])
        with self._lock:
            if self._loaded is None or self._loaded.version != version:
                self._loaded = _load(self._path, version)
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
            # One string per term, parsed by numpy: three times faster than a row per posting for common terms.
            with self._connect() as db:
                packed = [
                    db.execute(
                        "SELECT group_concat(doc * 65536 + min(tf, 65535)) FROM postings WHERE term = ?", (term,)
                    ).fetchone()[0]
                    for term in missing
                ]
            loaded = [_parse(snapshot, p) for p in packed]
            with self._lock:
                for term, postings in zip(missing, loaded, strict=True):
                    snapshot.postings[term] = postings
                while len(snapshot.postings) > _CACHED_TERMS:
                    snapshot.postings.popitem(last=False)
            found.update(zip(missing, loaded, strict=True))
        # In the order asked: float sums, and so ties in the ranking, do not depend on what was cached.
        return [found[t] for t in terms if len(found[t][0])]


def _parse(snapshot: _Snapshot, packed: str | None) -> _Postings:
    """Packed ``doc * 65536 + tf`` codes as rows of the snapshot's arrays and term frequencies."""
    codes = np.fromstring(packed, dtype=np.int64, sep=",") if packed else np.zeros(0, dtype=np.int64)
    docs = codes >> 16
    rows = np.full(len(docs), -1, dtype=np.int64)
    known = docs < len(snapshot.row_of_doc)  # a doc written after the snapshot is not in it
    rows[known] = snapshot.row_of_doc[docs[known]]
    inside = rows >= 0
    return rows[inside], (codes[inside] & 0xFFFF).astype(np.float32)


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


def _load(path: Path, version: int) -> _Snapshot:
    with sqlite.connect(path) as db:
        rows = db.execute("SELECT doc, chunk_id, length, published_ts, dated, source_key FROM docs").fetchall()
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


def _rebuild(db: sqlite3.Connection, chunks: Iterable[Chunk]) -> None:
    db.execute("DELETE FROM postings")
    db.execute("DELETE FROM docs")
    _add(db, chunks)
    db.execute(_ANALYZER, (ANALYZER_VERSION,))
    db.execute(_BUMP)


def _add(db: sqlite3.Connection, chunks: Iterable[Chunk]) -> None:
    for chunk in chunks:
        counts = Counter(terms_of(chunk))
        _remove(db, [chunk.id])
        doc = db.execute(
            "INSERT INTO docs (chunk_id, article_id, length, published_ts, dated, source_key)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                chunk.id,
                chunk.article_id,
                sum(counts.values()),
                int(chunk.published_at.timestamp()) if chunk.published_at else 0,
                int(chunk.published_at is not None),
                source_key(chunk.source or ""),
            ),
        ).lastrowid
        db.executemany("INSERT INTO postings VALUES (?, ?, ?)", [(t, doc, n) for t, n in counts.items()])


def _remove(db: sqlite3.Connection, chunk_ids: Sequence[str]) -> None:
    for start in range(0, len(chunk_ids), 500):
        part = list(chunk_ids[start : start + 500])
        marks = ",".join("?" * len(part))
        db.execute(f"DELETE FROM postings WHERE doc IN (SELECT doc FROM docs WHERE chunk_id IN ({marks}))", part)
        db.execute(f"DELETE FROM docs WHERE chunk_id IN ({marks})", part)


def _upgrade(path: Path) -> None:
    """An index written before doc numbers (postings keyed by chunk id) is converted in place, once,
    inside one write transaction: another process that opens it meanwhile waits, then finds it done."""
    if not path.exists():
        return
    with sqlite.connect(path, timeout=600) as db:
        if "chunk_id" not in {r[1] for r in db.execute("PRAGMA table_info(postings)")}:
            return
        db.execute("BEGIN IMMEDIATE")
        if "chunk_id" not in {r[1] for r in db.execute("PRAGMA table_info(postings)")}:
            return  # another process converted it while this one waited
        db.execute("DROP INDEX IF EXISTS postings_chunk")
        db.execute("ALTER TABLE docs RENAME TO docs_v1")
        db.execute("ALTER TABLE postings RENAME TO postings_v1")
        for statement in _TABLES:
            db.execute(statement)
        db.execute(
            "INSERT INTO docs (chunk_id, article_id, length, published_ts, dated, source_key)"
            " SELECT chunk_id, article_id, length, published_ts, dated, source_key FROM docs_v1 ORDER BY chunk_id"
        )
        db.execute(
            "INSERT INTO postings SELECT p.term, d.doc, p.tf FROM postings_v1 p JOIN docs d ON d.chunk_id = p.chunk_id"
            " ORDER BY p.term, d.doc"
        )
        db.execute("DROP TABLE postings_v1")
        db.execute("DROP TABLE docs_v1")
        db.execute(_BUMP)


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
