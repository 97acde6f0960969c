"""The article registry: what is known of each stored article, beside the chunks in Chroma.

Chroma holds chunks; the registry holds what is about whole articles: content hashes (so
unchanged articles are skipped without asking Chroma), the exact copies an article was also
published as (other URLs and outlets), its near-duplicate story cluster with MinHash
signatures for finding more, and the file it came from (for ``--prune``). It is kept in
``articles.sqlite3`` in the data directory, or in the shared database (``backend.store.db``), where
every replica reads the same registry.

Ingest writes the registry after the chunks are in Chroma, so a crash in between leaves an
article that is simply written again on the next run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import astuple
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import Connection

from backend.core.types import ArticleRecord as ArticleRecord
from backend.core.types import Copy as Copy
from backend.store.db import Database, opened
from backend.store.schema import article_copies, article_lsh, article_meta, articles

# Statements stay small whatever the number of ids: SQLite and PostgreSQL both limit bound parameters.
_CHUNK = 500
_COPY_COLUMNS = (
    article_copies.c.copy_id,
    article_copies.c.article_id,
    article_copies.c.url,
    article_copies.c.source,
    article_copies.c.origin,
)
_COPY_NAMES = [c.name for c in _COPY_COLUMNS]  # in the order of ``Copy``'s fields


class ArticleRegistry:
    def __init__(self, where: Path | Database) -> None:
        """``where``: the SQLite file of the embedded default, or the shared database."""
        self._db = opened(where, "articles")
        self._lock = threading.Lock()

    def signature_version(self) -> int:
        """The version of the MinHash that made the stored signatures (0: none stored yet, and none recorded)."""
        with self._db.begin() as db:
            found = db.execute(sa.select(article_meta.c.value).where(article_meta.c.key == "minhash")).scalar()
        return 0 if found is None else int(found)

    def signed_ids(self) -> list[str]:
        query = sa.select(articles.c.id).where(articles.c.signature.is_not(None)).order_by(articles.c.id)
        with self._db.begin() as db:
            return list(db.execute(query).scalars())

    def resign(self, signatures: Mapping[str, tuple[np.ndarray, Sequence[tuple[int, int]]]], version: int) -> None:
        """Replace articles' signatures and LSH buckets, and record the MinHash that made them, in one
        transaction: signatures of two versions are never compared."""
        ids = list(signatures)
        signing = sa.update(articles).where(articles.c.id == sa.bindparam("signed_id"))
        version_row = self._db.insert(article_meta).values(key="minhash", value=version)
        with self._lock, self._db.begin() as db:
            if ids:
                db.execute(
                    signing.values(signature=sa.bindparam("new_signature")),
                    [{"signed_id": i, "new_signature": _bytes(s)} for i, (s, _) in signatures.items()],
                )
                for part in _parts(ids):
                    db.execute(sa.delete(article_lsh).where(article_lsh.c.article_id.in_(part)))
                self._buckets(db, {i: bands for i, (_, bands) in signatures.items()})
            db.execute(version_row.on_conflict_do_update(index_elements=[article_meta.c.key], set_={"value": version}))

    def get(self, article_ids: Sequence[str]) -> dict[str, ArticleRecord]:
        with self._db.begin() as db:
            rows = _rows_in(db, _ARTICLES, articles.c.id, article_ids)
        return {r.id: r for r in map(_record, rows)}

    def by_text_hash(self, text_hashes: Sequence[str]) -> dict[str, str]:
        """Stored article id for each known normalised-text hash."""
        query = sa.select(articles.c.text_hash, articles.c.id)
        with self._db.begin() as db:
            rows = _rows_in(db, query, articles.c.text_hash, text_hashes)
        return {h: i for h, i in rows}

    def find(self, id_or_url: str) -> tuple[str | None, Copy | None]:
        """The stored article with this id or URL, or else the copy known by it."""
        article = sa.select(articles.c.id).where((articles.c.id == id_or_url) | (articles.c.url == id_or_url))
        copy = sa.select(*_COPY_COLUMNS).where(
            (article_copies.c.copy_id == id_or_url) | (article_copies.c.url == id_or_url)
        )
        with self._db.begin() as db:
            found = db.execute(article.limit(1)).scalar()
            if found is not None:
                return str(found), None
            row = db.execute(copy.limit(1)).first()
        return None, Copy(*row) if row else None

    def copies(self, article_ids: Sequence[str]) -> dict[str, list[Copy]]:
        found: dict[str, list[Copy]] = {}
        with self._db.begin() as db:
            rows = _rows_in(db, sa.select(*_COPY_COLUMNS), article_copies.c.article_id, article_ids)
        for row in rows:
            copy = Copy(*row)
            found.setdefault(copy.article_id, []).append(copy)
        return found

    def lsh_candidates(self, bands: Sequence[tuple[int, int]]) -> dict[str, np.ndarray]:
        """Signatures of stored articles sharing at least one LSH bucket with ``bands``."""
        found: dict[str, np.ndarray] = {}
        query = (
            sa.select(articles.c.id, articles.c.signature)
            .join_from(article_lsh, articles, articles.c.id == article_lsh.c.article_id)
            .where(articles.c.signature.is_not(None))
        )
        with self._db.begin() as db:
            for start in range(0, len(bands), _CHUNK // 2):
                # One (band = ? AND bucket = ?) per bucket, OR-ed: both SQLite and PostgreSQL look each up in the
                # primary key, where a row-value IN list makes SQLite scan the whole table.
                wanted = sa.or_(
                    *(
                        (article_lsh.c.band == band) & (article_lsh.c.bucket == bucket)
                        for band, bucket in bands[start : start + _CHUNK // 2]
                    )
                )
                for article_id, signature in db.execute(query.where(wanted)):
                    found[article_id] = np.frombuffer(signature, dtype=np.uint32)
        return found

    def save(
        self, records: Iterable[ArticleRecord], bands: dict[str, list[tuple[int, int]]], copies: Iterable[Copy]
    ) -> None:
        """Record written articles and found copies in one transaction."""
        now = datetime.now(UTC).isoformat()
        written = {r.id: r for r in records}  # an id saved twice keeps its last record, as one by one would
        found = {c.copy_id: c for c in copies}
        ids = list(written)
        row = self._db.insert(articles)
        upsert = row.on_conflict_do_update(
            index_elements=[articles.c.id],
            set_={c.name: row.excluded[c.name] for c in articles.c if c.name != "id"},
        )
        copy_row = self._db.insert(article_copies)
        copy_upsert = copy_row.on_conflict_do_update(
            index_elements=[article_copies.c.copy_id],
            set_={c.name: copy_row.excluded[c.name] for c in article_copies.c if c.name != "copy_id"},
        )
        with self._lock, self._db.begin() as db:
            for part in _parts(ids):
                db.execute(sa.delete(article_lsh).where(article_lsh.c.article_id.in_(part)))
                db.execute(sa.delete(article_copies).where(article_copies.c.copy_id.in_(part)))  # a copy no more
            if written:
                db.execute(upsert, [_row(r, now) for r in written.values()])
            self._buckets(db, {i: bands.get(i, []) for i in ids})
            if found:
                db.execute(copy_upsert, [dict(zip(_COPY_NAMES, astuple(c), strict=True)) for c in found.values()])

    def _buckets(self, db: Connection, bands: Mapping[str, Sequence[tuple[int, int]]]) -> None:
        rows = {(band, bucket, article_id) for article_id, found in bands.items() for band, bucket in found}
        if rows:
            db.execute(
                self._db.insert(article_lsh).on_conflict_do_nothing(),
                [{"band": b, "bucket": k, "article_id": a} for b, k, a in sorted(rows)],
            )

    def delete(self, article_ids: Sequence[str]) -> None:
        """Forget articles; their copies and buckets go with them (``ON DELETE CASCADE``)."""
        with self._lock, self._db.begin() as db:
            for part in _parts(article_ids):
                db.execute(sa.delete(articles).where(articles.c.id.in_(part)))

    def delete_copy(self, copy_id: str) -> None:
        with self._lock, self._db.begin() as db:
            db.execute(sa.delete(article_copies).where(article_copies.c.copy_id == copy_id))

    def ids_from_origins(self, origins: Sequence[str]) -> set[str]:
        """Articles whose origin file is one of ``origins`` or lies under one of them (a folder)."""
        found: set[str] = set()
        with self._db.begin() as db:
            for origin in origins:
                prefix = origin.rstrip("/") + "/"
                # A prefix compared as text, not LIKE: SQLite's LIKE ignores case, and paths hold % and _.
                under = sa.func.substr(articles.c.origin, 1, len(prefix)) == prefix
                query = sa.select(articles.c.id).where((articles.c.origin == origin) | under)
                found.update(db.execute(query).scalars())
        return found

    def ids(self) -> set[str]:
        with self._db.begin() as db:
            return set(db.execute(sa.select(articles.c.id)).scalars())

    def count(self) -> int:
        with self._db.begin() as db:
            return int(db.execute(sa.select(sa.func.count()).select_from(articles)).scalar_one())

    def last_ingested(self) -> str | None:
        with self._db.begin() as db:
            return db.execute(sa.select(sa.func.max(articles.c.ingested_at))).scalar()

    def span(self) -> tuple[int, str | None, str | None]:
        """Number of articles and the first and last publication time (ISO, UTC) among the dated."""
        published = articles.c.published_at
        with self._db.begin() as db:
            count, first, last = db.execute(
                sa.select(sa.func.count(), sa.func.min(published), sa.func.max(published))
            ).one()
        return int(count), first, last

    def outlets(self) -> dict[str, int]:
        """Outlet names with their number of stored articles, most first."""
        articles_of = sa.func.count()
        query = (
            sa.select(articles.c.source, articles_of)
            .where(articles.c.source.is_not(None), articles.c.source != "")
            .group_by(articles.c.source)
            .order_by(articles_of.desc(), articles.c.source)
        )
        with self._db.begin() as db:
            return {name: int(n) for name, n in db.execute(query)}

    def listing(
        self, limit: int, offset: int = 0, source: str | None = None, title_contains: str | None = None
    ) -> tuple[int, list[ArticleRecord]]:
        """A page of articles, newest first (undated last), with the number that match in all."""
        where = []
        if source:
            where.append(articles.c.source == source)
        if title_contains:
            # Both sides lowered, the needle's LIKE wildcards escaped: a case-insensitive substring on both
            # backends (PostgreSQL has no instr, and its LIKE does not ignore case).
            where.append(sa.func.lower(articles.c.title).contains(title_contains.lower(), autoescape=True))
        page = _ARTICLES.where(*where).order_by(
            articles.c.published_at.is_(None), articles.c.published_at.desc(), articles.c.id
        )
        with self._db.begin() as db:
            total = int(db.execute(sa.select(sa.func.count()).select_from(articles).where(*where)).scalar_one())
            rows = db.execute(page.limit(limit).offset(offset)).all()
        return total, [_record(r) for r in rows]

    def integrity_ok(self) -> bool:
        return self._db.intact([articles, article_copies, article_lsh, article_meta])


_ARTICLES = sa.select(articles)


def _parts(values: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start : start + _CHUNK])


def _rows_in(db: Connection, query: sa.Select[Any], column: sa.ColumnElement[Any], values: Sequence[str]) -> list[Any]:
    """``query``'s rows where ``column`` is one of ``values``, asked a part at a time."""
    return [row for part in _parts(values) for row in db.execute(query.where(column.in_(part)))]


def _bytes(signature: np.ndarray) -> bytes:
    return signature.astype(np.uint32).tobytes()


def _row(r: ArticleRecord, ingested_at: str) -> dict[str, Any]:
    return {
        "id": r.id,
        "text_hash": r.text_hash,
        "content_hash": r.content_hash,
        "cluster_id": r.cluster_id,
        "title": r.title,
        "url": r.url,
        "source": r.source,
        "published_at": r.published_at,
        "origin": r.origin,
        "chunks": r.chunks,
        "signature": _bytes(r.signature) if r.signature is not None else None,
        "ingested_at": ingested_at,
    }


def _record(row: Sequence[Any]) -> ArticleRecord:
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
        signature=np.frombuffer(bytes(sig), dtype=np.uint32) if sig is not None else None,
    )
