"""The article registry: one SQLite file beside Chroma that knows each stored article.

Chroma holds chunks; the registry holds what is about whole articles: content hashes (so
unchanged articles are skipped without asking Chroma), the exact copies an article was also
published as (other URLs and outlets), its near-duplicate story cluster with MinHash
signatures for finding more, and the file it came from (for ``--prune``).

Ingest writes the registry after the chunks are in Chroma, so a crash in between leaves an
article that is simply written again on the next run.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from backend.core.types import ArticleRecord as ArticleRecord
from backend.core.types import Copy as Copy
from backend.store import sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    text_hash TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    cluster_id TEXT NOT NULL,
    title TEXT NOT NULL,
    url TEXT,
    source TEXT,
    published_at TEXT,
    origin TEXT,
    chunks INTEGER NOT NULL,
    signature BLOB,
    ingested_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS articles_text_hash ON articles(text_hash);
CREATE INDEX IF NOT EXISTS articles_url ON articles(url);
CREATE INDEX IF NOT EXISTS articles_cluster ON articles(cluster_id);
CREATE INDEX IF NOT EXISTS articles_origin ON articles(origin);
CREATE TABLE IF NOT EXISTS copies (
    copy_id TEXT PRIMARY KEY,
    article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    url TEXT,
    source TEXT,
    origin TEXT
);
CREATE INDEX IF NOT EXISTS copies_article ON copies(article_id);
CREATE INDEX IF NOT EXISTS copies_url ON copies(url);
CREATE TABLE IF NOT EXISTS lsh (
    band INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    PRIMARY KEY (band, bucket, article_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lsh_article ON lsh(article_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class ArticleRegistry(sqlite.SqliteStore):
    schema = _SCHEMA

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._lock = threading.Lock()
        with self._connect() as db:
            if db.execute("SELECT 1 FROM meta WHERE key = 'minhash'").fetchone() is None:
                # Registries from before the record were signed by the first MinHash; an empty one by none yet.
                signed = db.execute("SELECT 1 FROM articles WHERE signature IS NOT NULL LIMIT 1").fetchone()
                db.execute("INSERT INTO meta VALUES ('minhash', ?)", (1 if signed else 0,))

    def signature_version(self) -> int:
        """The version of the MinHash that made the stored signatures (0: none stored yet)."""
        with self._connect() as db:
            return int(db.execute("SELECT value FROM meta WHERE key = 'minhash'").fetchone()[0])

    def signed_ids(self) -> list[str]:
        with self._connect() as db:
            return [r[0] for r in db.execute("SELECT id FROM articles WHERE signature IS NOT NULL ORDER BY id")]

    def resign(self, signatures: Mapping[str, tuple[np.ndarray, Sequence[tuple[int, int]]]], version: int) -> None:
        """Replace articles' signatures and LSH buckets, and record the MinHash that made them, in one
        transaction: signatures of two versions are never compared."""
        with self._connect() as db:
            for article_id, (signature, bands) in signatures.items():
                db.execute(
                    "UPDATE articles SET signature = ? WHERE id = ?",
                    (signature.astype(np.uint32).tobytes(), article_id),
                )
                db.execute("DELETE FROM lsh WHERE article_id = ?", (article_id,))
                db.executemany("INSERT OR IGNORE INTO lsh VALUES (?, ?, ?)", [(b, k, article_id) for b, k in bands])
            db.execute("INSERT OR REPLACE INTO meta VALUES ('minhash', ?)", (version,))

    def get(self, article_ids: Sequence[str]) -> dict[str, ArticleRecord]:
        if not article_ids:
            return {}
        with self._connect() as db:
            rows = _select_in(db, "SELECT * FROM articles WHERE id IN ({})", article_ids)
        return {r.id: r for r in map(_record, rows)}

    def by_text_hash(self, text_hashes: Sequence[str]) -> dict[str, str]:
        """Stored article id for each known normalised-text hash."""
        if not text_hashes:
            return {}
        with self._connect() as db:
            rows = _select_in(db, "SELECT text_hash, id FROM articles WHERE text_hash IN ({})", text_hashes)
        return {h: i for h, i in rows}

    def find(self, id_or_url: str) -> tuple[str | None, Copy | None]:
        """The stored article with this id or URL, or else the copy known by it."""
        with self._connect() as db:
            row = db.execute(
                "SELECT id FROM articles WHERE id = ? OR url = ? LIMIT 1", (id_or_url, id_or_url)
            ).fetchone()
            if row:
                return str(row[0]), None
            copy = db.execute(
                "SELECT copy_id, article_id, url, source, origin FROM copies WHERE copy_id = ? OR url = ? LIMIT 1",
                (id_or_url, id_or_url),
            ).fetchone()
        return None, Copy(*copy) if copy else None

    def copies(self, article_ids: Sequence[str]) -> dict[str, list[Copy]]:
        found: dict[str, list[Copy]] = {}
        if not article_ids:
            return found
        with self._connect() as db:
            rows = _select_in(
                db, "SELECT copy_id, article_id, url, source, origin FROM copies WHERE article_id IN ({})", article_ids
            )
        for row in rows:
            copy = Copy(*row)
            found.setdefault(copy.article_id, []).append(copy)
        return found

    def lsh_candidates(self, bands: Sequence[tuple[int, int]]) -> dict[str, np.ndarray]:
        """Signatures of stored articles sharing at least one LSH bucket with ``bands``."""
        if not bands:
            return {}
        with self._connect() as db:
            db.execute("CREATE TEMP TABLE IF NOT EXISTS probe (band INTEGER, bucket INTEGER)")
            db.execute("DELETE FROM probe")
            db.executemany("INSERT INTO probe VALUES (?, ?)", bands)
            rows = db.execute(
                "SELECT DISTINCT a.id, a.signature FROM probe p"
                " JOIN lsh l ON l.band = p.band AND l.bucket = p.bucket"
                " JOIN articles a ON a.id = l.article_id WHERE a.signature IS NOT NULL"
            ).fetchall()
        return {i: np.frombuffer(sig, dtype=np.uint32) for i, sig in rows}

    def save(
        self, records: Iterable[ArticleRecord], bands: dict[str, list[tuple[int, int]]], copies: Iterable[Copy]
    ) -> None:
        """Record written articles and found copies in one transaction."""
        now = datetime.now(UTC).isoformat()
        with self._lock, self._connect() as db:
            for r in records:
                db.execute("DELETE FROM lsh WHERE article_id = ?", (r.id,))
                db.execute("DELETE FROM copies WHERE copy_id = ?", (r.id,))
                db.execute(
                    "INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET"
                    " text_hash=excluded.text_hash, content_hash=excluded.content_hash,"
                    " cluster_id=excluded.cluster_id, title=excluded.title, url=excluded.url,"
                    " source=excluded.source, published_at=excluded.published_at, origin=excluded.origin,"
                    " chunks=excluded.chunks, signature=excluded.signature, ingested_at=excluded.ingested_at",
                    (
                        r.id,
                        r.text_hash,
                        r.content_hash,
                        r.cluster_id,
                        r.title,
                        r.url,
                        r.source,
                        r.published_at,
                        r.origin,
                        r.chunks,
                        r.signature.astype(np.uint32).tobytes() if r.signature is not None else None,
                        now,
                    ),
                )
                db.executemany(
                    "INSERT OR IGNORE INTO lsh VALUES (?, ?, ?)", [(b, k, r.id) for b, k in bands.get(r.id, [])]
                )
            for c in copies:
                db.execute(
                    "INSERT INTO copies VALUES (?,?,?,?,?) ON CONFLICT(copy_id) DO UPDATE SET"
                    " article_id=excluded.article_id, url=excluded.url, source=excluded.source,"
                    " origin=excluded.origin",
                    (c.copy_id, c.article_id, c.url, c.source, c.origin),
                )

    def delete(self, article_ids: Sequence[str]) -> None:
        if not article_ids:
            return
        with self._lock, self._connect() as db:
            _execute_in(db, "DELETE FROM articles WHERE id IN ({})", article_ids)

    def delete_copy(self, copy_id: str) -> None:
        with self._lock, self._connect() as db:
            db.execute("DELETE FROM copies WHERE copy_id = ?", (copy_id,))

    def ids_from_origins(self, origins: Sequence[str]) -> set[str]:
        """Articles whose origin file is one of ``origins`` or lies under one of them (a folder)."""
        found: set[str] = set()
        with self._connect() as db:
            for origin in origins:
                prefix = origin.rstrip("/") + "/"
                rows = db.execute(
                    "SELECT id FROM articles WHERE origin = ? OR substr(origin, 1, ?) = ?",
                    (origin, len(prefix), prefix),
                ).fetchall()
                found.update(r[0] for r in rows)
        return found

    def ids(self) -> set[str]:
        with self._connect() as db:
            return {r[0] for r in db.execute("SELECT id FROM articles")}

    def count(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM articles").fetchone()[0])

    def last_ingested(self) -> str | None:
        with self._connect() as db:
            return db.execute("SELECT MAX(ingested_at) FROM articles").fetchone()[0]  # type: ignore[no-any-return]

    def span(self) -> tuple[int, str | None, str | None]:
        """Number of articles and the first and last publication time (ISO, UTC) among the dated."""
        with self._connect() as db:
            count, first, last = db.execute(
                "SELECT COUNT(*), MIN(published_at), MAX(published_at) FROM articles"
            ).fetchone()
        return int(count), first, last

    def outlets(self) -> dict[str, int]:
        """Outlet names with their number of stored articles, most first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT source, COUNT(*) FROM articles WHERE source IS NOT NULL AND source != ''"
                " GROUP BY source ORDER BY COUNT(*) DESC, source"
            ).fetchall()
        return {name: int(n) for name, n in rows}

    def listing(
        self, limit: int, offset: int = 0, source: str | None = None, title_contains: str | None = None
    ) -> tuple[int, list[ArticleRecord]]:
        """A page of articles, newest first (undated last), with the number that match in all."""
        where, args = [], []
        if source:
            where.append("source = ?")
            args.append(source)
        if title_contains:
            where.append("instr(lower(title), ?) > 0")
            args.append(title_contains.lower())
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._connect() as db:
            total = int(db.execute(f"SELECT COUNT(*) FROM articles{clause}", args).fetchone()[0])
            rows = db.execute(
                f"SELECT * FROM articles{clause} ORDER BY published_at IS NULL, published_at DESC, id LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
        return total, [_record(r) for r in rows]

    def integrity_ok(self) -> bool:
        with self._connect() as db:
            return bool(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")


_CHUNK = 500  # SQLite's limit on bound parameters is generous, but keep statements small


def _select_in(db: sqlite3.Connection, sql: str, values: Sequence[str]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for i in range(0, len(values), _CHUNK):
        part = list(values[i : i + _CHUNK])
        rows.extend(db.execute(sql.format(",".join("?" * len(part))), part).fetchall())
    return rows


def _execute_in(db: sqlite3.Connection, sql: str, values: Sequence[str]) -> None:
    for i in range(0, len(values), _CHUNK):
        part = list(values[i : i + _CHUNK])
        db.execute(sql.format(",".join("?" * len(part))), part)


def _record(row: tuple[Any, ...]) -> ArticleRecord:
    (id_, text_hash, content_hash, cluster_id, title, url, source, published_at, origin, chunks, sig, _) = row
    return ArticleRecord(
        id=str(id_),
        text_hash=str(text_hash),
        content_hash=str(content_hash),
        cluster_id=str(cluster_id),
        title=str(title),
        url=url if isinstance(url, str) else None,
        source=source if isinstance(source, str) else None,
        published_at=published_at if isinstance(published_at, str) else None,
        origin=origin if isinstance(origin, str) else None,
        chunks=int(chunks),
        signature=np.frombuffer(sig, dtype=np.uint32) if isinstance(sig, bytes) else None,
    )
