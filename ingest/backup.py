"""Backup and restore of an embedded archive: a consistent copy, taken while nothing writes.

A backup holds the data directory's writer lock for its whole copy, so no ingest (command line or a
server's) can write meanwhile, and refuses while a server has the embedded store open (it may write at
any moment, and embedded Chroma is not safe across processes). SQLite files (the article registry, the
BM25 index, conversations and feedback, Chroma's own metadata) are copied with SQLite's backup API, which
reads a committed state whatever their write-ahead logs hold; Chroma's vector files are copied as they
lie, which is safe because the lock keeps every writer out. A manifest names every file with its size and
SHA-256 and the archive's counts, so a restore can refuse a damaged or partial backup before touching
anything.

A restore takes the same lock, checks the backup, copies it next to the archive, then swaps it in by
renames; the archive it replaces is kept beside the data directory, never deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from backend.settings import Settings
from backend.store.ownership import ensure_not_served
from ingest.errors import BackupError as BackupError  # raised here; importable from here too
from ingest.follow.poller import FOLLOW_LOCK
from ingest.lock import LOCK_FILE, writer_lock

MANIFEST = "byline-backup.json"
FORMAT = 1
# The lock files mark who holds the directory now; they are never part of an archive.
_NOT_ARCHIVE = {LOCK_FILE, ".server.lock", FOLLOW_LOCK}
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
_STAGING = ".restore-staging"


@dataclass(frozen=True, slots=True)
class BackupReport:
    path: Path
    files: int
    bytes: int
    counts: dict[str, int]
    seconds: float
    previous: Path | None = None  # restore: where the archive it replaced was kept

    def summary(self, verb: str) -> str:
        counts = ", ".join(f"{n:,} {name}" for name, n in self.counts.items())
        line = f"{verb} {self.files} files ({self.bytes / 2**20:.1f} MiB) in {self.seconds:.1f}s: {counts}"
        if self.previous is not None:
            line += f"\nthe archive it replaced is kept in {self.previous}"
        return line


def _archive_files(data_dir: Path) -> Iterator[Path]:
    """The files that make up an archive, relative to ``data_dir``, in a stable order."""
    for path in sorted(data_dir.rglob("*")):
        relative = path.relative_to(data_dir)
        if relative.parts[0].startswith(".restore"):
            continue
        if path.is_file() and path.name not in _NOT_ARCHIVE and not path.name.endswith(_SQLITE_SIDE_FILES):
            yield relative


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_sqlite(source: Path, target: Path) -> None:
    """A committed state of a live SQLite file, whatever its write-ahead log holds."""
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _count(db_path: Path, sql: str) -> int | None:
    if not db_path.exists():
        return None
    # immutable: read the file as it lies, leaving no shared-memory or log file beside it (callers hold the
    # writer lock, or read a copy nothing else has open)
    db = sqlite3.connect(f"file:{db_path}?mode=ro&immutable=1", uri=True, timeout=30)
    try:
        return int(db.execute(sql).fetchone()[0])
    except sqlite3.Error:  # a store without that table yet
        return None
    finally:
        db.close()


def archive_counts(data_dir: Path, settings: Settings) -> dict[str, int]:
    """What the archive in ``data_dir`` holds, read from its files without opening Chroma (which writes)."""
    where = settings.model_copy(update={"data_dir": data_dir})
    chunks = _count(where.lexical_db, "SELECT COUNT(*) FROM lexical_docs")
    if chunks is None:  # a BM25 index not opened since its tables were renamed (the lexical_0001 migration)
        chunks = _count(where.lexical_db, "SELECT COUNT(*) FROM docs")
    found = {
        "articles": _count(where.articles_db, "SELECT COUNT(*) FROM articles"),
        "chunks": chunks,
        "vectors": _count(where.chroma_dir / "chroma.sqlite3", "SELECT COUNT(*) FROM embeddings"),
        "conversations": _count(where.sessions_db, "SELECT COUNT(*) FROM sessions"),
        "feedback": _count(where.sessions_db, "SELECT COUNT(*) FROM feedback"),
    }
    return {name: n for name, n in found.items() if n is not None}


def _refuse_unless_embedded_and_free(settings: Settings) -> None:
    if settings.chroma.mode != "embedded":
        raise BackupError(
            "the vectors live in a Chroma server (BYLINE_CHROMA__MODE=http): back that server's data up with its"
            " own tools; byline backup copies an embedded archive"
        )
    if settings.database_url is not None:  # a copy of the data directory would leave the registry out
        raise BackupError(
            "the archive's tables live in PostgreSQL (BYLINE_DATABASE_URL): back that database up with its own"
            " tools (pg_dump); byline backup copies an embedded archive"
        )
    ensure_not_served(settings.data_dir)


def backup(settings: Settings, target: Path) -> BackupReport:
    """Copy the archive in ``settings.data_dir`` to the new directory ``target``."""
    started = time.perf_counter()
    data_dir = settings.data_dir
    _refuse_unless_embedded_and_free(settings)
    if not (settings.articles_db.exists() or settings.chroma_dir.exists()):
        raise BackupError(f"there is no archive in {data_dir} to back up")
    target = target.absolute()
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} exists and is not empty; name a new directory for the backup")
    if target.is_relative_to(data_dir.absolute()):
        raise BackupError("the backup cannot go inside the data directory it copies")
    partial = target.with_name(target.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)  # what an interrupted backup left
    with writer_lock(settings):
        files: dict[str, dict[str, int | str]] = {}
        for relative in _archive_files(data_dir):
            source, copy = data_dir / relative, partial / relative
            copy.parent.mkdir(parents=True, exist_ok=True)
            if relative.suffix == ".sqlite3":
                _copy_sqlite(source, copy)
            else:
                shutil.copy2(source, copy)
            files[str(relative)] = {"bytes": copy.stat().st_size, "sha256": _sha256(copy)}
        counts = archive_counts(partial, settings)
    manifest = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(),
        "source": str(data_dir.absolute()),
        "collection": settings.chroma.collection,
        "embedding_model": settings.embedding.model,
        "counts": counts,
        "files": files,
    }
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    _sync_tree(partial)
    if target.exists():
        target.rmdir()
    partial.rename(target)  # a backup directory is complete or absent
    total = sum(int(f["bytes"]) for f in files.values())
    return BackupReport(target, len(files), total, counts, time.perf_counter() - started)


def read_manifest(source: Path) -> dict[str, object]:
    """The backup's manifest, after checking that every file it names is there, whole and unchanged."""
    path = source / MANIFEST
    if not path.is_file():
        raise BackupError(f"{source} is not a Byline backup (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("format") != FORMAT or not isinstance(files, dict):
            raise ValueError("unknown format")
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"the manifest of the backup in {source} is unreadable: {exc}") from exc
    for name, meta in files.items():
        copy = source / name
        if not copy.is_file() or copy.stat().st_size != meta["bytes"] or _sha256(copy) != meta["sha256"]:
            raise BackupError(f"the backup in {source} is damaged or incomplete: {name} is missing or changed")
    return dict(manifest)


def restore(settings: Settings, source: Path) -> BackupReport:
    """Replace the archive in ``settings.data_dir`` by the backup in ``source``."""
    started = time.perf_counter()
    data_dir = settings.data_dir
    _refuse_unless_embedded_and_free(settings)
    source = source.absolute()
    manifest = read_manifest(source)
    if manifest.get("collection") != settings.chroma.collection:
        raise BackupError(
            f"the backup holds the Chroma collection {manifest.get('collection')!r}, the settings name"
            f" {settings.chroma.collection!r} (BYLINE_CHROMA__COLLECTION)"
        )
    files = manifest["files"]
    assert isinstance(files, dict)
    data_dir.mkdir(parents=True, exist_ok=True)
    with writer_lock(settings):
        staging = data_dir / _STAGING
        if staging.exists():
            shutil.rmtree(staging)
        for name, meta in files.items():
            copy = staging / name
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, copy)
            if _sha256(copy) != meta["sha256"]:
                raise BackupError(f"{name} changed while it was copied from {source}; nothing was replaced")
        _sync_tree(staging)
        current = [p for p in data_dir.iterdir() if p.name not in _NOT_ARCHIVE and p.name != _STAGING]
        previous = None
        if current:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            previous = data_dir.with_name(f"{data_dir.name}.before-restore-{stamp}")
            previous.mkdir()
            for entry in current:
                entry.rename(previous / entry.name)
        for entry in staging.iterdir():
            entry.rename(data_dir / entry.name)
        staging.rmdir()
        _sync_tree(data_dir)
        counts = archive_counts(data_dir, settings)
    total = sum(int(meta["bytes"]) for meta in files.values())
    return BackupReport(data_dir, len(files), total, counts, time.perf_counter() - started, previous)


def _sync_tree(root: Path) -> None:
    """Make a copied tree survive a machine crash before it is announced (renamed into place)."""
    for path in [*root.rglob("*"), root]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
