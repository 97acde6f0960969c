"""The lexical (BM25) index, in SQLite beside Chroma: postings per term, updated with every ingest batch.

It describes exactly the chunks Chroma holds: ingest adds and removes chunks in both, and a run
that finds the two counts apart rebuilds this one from Chroma (after a crash between the two
writes, or for an archive ingested before the index existed). Queries read postings for the
question's terms only; nothing is rebuilt per query, and several processes can read it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from backend.core.dates import end_of_day, start_of_day
from backend.core.text import content_terms
from backend.core.types import Chunk, SearchQuery
from backend.store import sqlite
from backend.store.chroma import source_key

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    chunk_id TEXT PRIMARY KEY,
    article_id TEXT NOT NULL,
    length INTEGER NOT NULL,
    published_ts INTEGER NOT NULL,
    dated INTEGER NOT NULL,
    source_key TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS postings (
    term TEXT NOT NULL,
    chunk_id TEXT NOT NULL,
    tf INTEGER NOT NULL,
    PRIMARY KEY (term, chunk_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS postings_chunk ON postings(chunk_id);
"""

K1, B = 1.5, 0.75  # the usual BM25 constants


def terms_of(chunk: Chunk) -> list[str]:
    """Title words count too: a question often names what the headline names."""
    return content_terms(f"{chunk.title}\n{chunk.text}")


class LexicalIndex(sqlite.SqliteStore):
    schema = _SCHEMA

    def add(self, chunks: Iterable[Chunk]) -> None:
        """Add or replace chunks (by id)."""
        with self._connect() as db:
            for chunk in chunks:
                counts = Counter(terms_of(chunk))
                db.execute("DELETE FROM postings WHERE chunk_id = ?", (chunk.id,))
                db.execute(
                    "INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        chunk.id,
                        chunk.article_id,
                        sum(counts.values()),
                        int(chunk.published_at.timestamp()) if chunk.published_at else 0,
                        int(chunk.published_at is not None),
                        source_key(chunk.source or ""),
                    ),
                )
                db.executemany("INSERT INTO postings VALUES (?, ?, ?)", [(t, chunk.id, n) for t, n in counts.items()])

    def delete(self, chunk_ids: Sequence[str]) -> None:
        with self._connect() as db:
            db.executemany("DELETE FROM postings WHERE chunk_id = ?", [(c,) for c in chunk_ids])
            db.executemany("DELETE FROM docs WHERE chunk_id = ?", [(c,) for c in chunk_ids])

    def clear(self) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM postings")
            db.execute("DELETE FROM docs")

    def count(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM docs").fetchone()[0])

    def ids(self) -> set[str]:
        with self._connect() as db:
            return {r[0] for r in db.execute("SELECT chunk_id FROM docs")}

    def search(self, query: SearchQuery, k: int) -> list[tuple[str, float]]:
        """Chunk ids with BM25 scores, best first, among the chunks the query's filters allow."""
        terms = sorted(set(content_terms(query.text)))
        if not terms:
            return []
        where, params = _filters(query)
        scores: dict[str, float] = {}
        with self._connect() as db:
            total, average = db.execute("SELECT COUNT(*), AVG(length) FROM docs").fetchone()
            if not total:
                return []
            for term in terms:
                (df,) = db.execute("SELECT COUNT(*) FROM postings WHERE term = ?", (term,)).fetchone()
                if not df:
                    continue
                idf = math.log(1 + (total - df + 0.5) / (df + 0.5))
                rows = db.execute(
                    "SELECT p.chunk_id, p.tf, d.length FROM postings p JOIN docs d ON d.chunk_id = p.chunk_id"
                    f" WHERE p.term = ?{where}",
                    (term, *params),
                )
                for chunk_id, tf, length in rows:
                    gain = idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / average))
                    scores[chunk_id] = scores.get(chunk_id, 0.0) + gain
        return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def _filters(query: SearchQuery) -> tuple[str, list[object]]:
    """The same filters as the vector store's, as SQL over the docs table."""
    clauses: list[str] = []
    params: list[object] = []
    if query.as_of is not None:
        clauses.append("(d.published_ts <= ? OR d.dated = 0)")
        params.append(end_of_day(query.as_of))
    f = query.filters
    if f.published_after is not None:
        clauses.append("d.dated = 1 AND d.published_ts >= ?")
        params.append(start_of_day(f.published_after))
    if f.published_before is not None:
        clauses.append("d.dated = 1 AND d.published_ts <= ?")
        params.append(end_of_day(f.published_before))
    if f.sources:
        keys = sorted({source_key(s) for s in f.sources})
        clauses.append(f"d.source_key IN ({','.join('?' * len(keys))})")
        params.extend(keys)
    return "".join(f" AND {c}" for c in clauses), params
