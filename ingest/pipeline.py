"""The ingest run: files -> articles -> (dedup) -> chunks -> embeddings -> store, in batches of whole articles.

Per batch, Chroma is written first (one upsert, so an article's chunks appear together; then
its stale chunks go) and the article registry last. A run killed anywhere is repaired by the
next: an article the registry does not know as written is simply written again, and chunk
ids derived from content make that an idempotent upsert.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import resource
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from chromadb.errors import ChromaError

from backend.core.errors import BylineError
from backend.core.protocols import ArticleStore, Embedder, LexicalStore, VectorStore
from backend.core.text import text_hash
from backend.core.types import Article, Removal
from backend.settings import Settings
from backend.store.articles import ArticleRecord, Copy
from backend.store.lexical import LexicalIndex
from ingest.chunking import PreparedChunk, chunk_article
from ingest.dedup import StoryClusterer, exact_key, minhash
from ingest.loaders import STDIN, LoadError, iter_files, load_file
from ingest.normalize import RecordError, article_from_record

_SHOWN_WARNINGS = 20
# Marks a batch between its Chroma write and the lexical index's (see Ingestor._sync_lexical).
_PENDING = ".ingest.pending"


class WriterBusyError(RuntimeError):
    """Another ingest holds the data directory."""


class ArchiveWriteError(BylineError):
    """The archive could not be written: a full disk, a read-only or unwritable data directory.

    The message names no path (an API client gets it); the command line adds the directory."""

    status = 503
    title = "Service unavailable"
    retry_after_s = 60


_OS_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "a file reached the largest size this process may write",
    errno.EROFS: "the data directory is read-only",
    errno.EACCES: "no permission to write the data directory",
    errno.EPERM: "no permission to write the data directory",
}
_LOW_SPACE = 1 << 20


def progress_bar(done: float, seconds: float) -> tuple[str, float]:
    """A 20-character bar for the share ``done`` (0 to 1) of a job running ``seconds``, and its ETA in seconds."""
    eta = seconds * (1 - done) / done if 0 < done < 1 else 0.0
    return f"[{'#' * int(done * 20):<20}] {done:4.0%}", eta


def storage_problem(exc: BaseException, data_dir: Path) -> str | None:
    """What stopped a write, in words, or None when ``exc`` is not a storage failure.

    SQLite and Chroma report a full disk or a read-only file in their own words (Chroma's can be as
    vague as "Error in compaction"), so what they say is backed by a look at the directory itself."""
    if isinstance(exc, OSError):
        inside = exc.filename is None or Path(str(exc.filename)).resolve().is_relative_to(data_dir.resolve())
        if exc.errno not in _OS_REASONS or not inside:  # an input file's trouble, not the archive's
            return None
        return f"{_OS_REASONS[exc.errno]} ({exc.strerror})"
    if not isinstance(exc, sqlite3.Error | ChromaError):
        return None
    said = str(exc).replace(str(data_dir.resolve()), "the data directory").replace(str(data_dir), "the data directory")
    lowered = said.lower()
    try:
        free = shutil.disk_usage(data_dir if data_dir.exists() else data_dir.parent).free
    except OSError:
        free = None
    if "disk is full" in lowered or "no space" in lowered:
        reason = "the disk is full"
    elif "readonly" in lowered or "read-only" in lowered or (data_dir.exists() and not os.access(data_dir, os.W_OK)):
        reason = "the data directory is read-only"
    elif free is not None and free < _LOW_SPACE:
        reason = "the disk is full"
    elif resource.getrlimit(resource.RLIMIT_FSIZE)[0] != resource.RLIM_INFINITY:
        reason = "a file may have reached the largest size this process may write (ulimit -f)"
    else:
        reason = "the store could not be written"
    return f"{reason} ({type(exc).__name__}: {said[:200]})"


@contextmanager
def storage_errors(data_dir: Path) -> Iterator[None]:
    """Turn a failed write into ``ArchiveWriteError`` with a reason a person can act on."""
    try:
        yield
    except (OSError, sqlite3.Error, ChromaError) as exc:
        reason = storage_problem(exc, data_dir)
        if reason is None:
            raise
        raise ArchiveWriteError(
            f"cannot write the archive: {reason}. Nothing half-written is visible (an article is recorded only"
            " once all its chunks are stored); once the cause is fixed, the same ingest again finishes the work"
        ) from exc


class ArticleNotFoundError(LookupError):
    pass


@dataclass(slots=True)
class IngestReport:
    files: int = 0
    records: int = 0
    articles_new: int = 0
    articles_updated: int = 0
    articles_unchanged: int = 0
    duplicate_ids: int = 0  # the same id twice in this run: the first is kept
    exact_copies: int = 0  # same text as a stored article under another id: kept as a copy
    chunks_written: int = 0
    chunks_deleted: int = 0
    texts_embedded: int = 0
    articles_pruned: int = 0
    # Story clusters this run touched that hold more than one article: cluster id -> member ids.
    clusters: dict[str, list[str]] = field(default_factory=dict)
    # What happened to each article id of the run: "new", "updated", "unchanged" or "copy", and a detail.
    outcomes: dict[str, tuple[str, str]] = field(default_factory=dict)
    errors: list[LoadError] = field(default_factory=list)
    warnings: list[LoadError] = field(default_factory=list)
    bytes_total: int = 0
    bytes_done: int = 0
    seconds: float = 0.0

    @property
    def articles_stored(self) -> int:
        return self.articles_new + self.articles_updated

    @property
    def articles_seen(self) -> int:
        return self.articles_stored + self.articles_unchanged + self.exact_copies

    def progress_line(self) -> str:
        """One line for a progress display: share of bytes read, articles, chunk rate, ETA."""
        rate = self.chunks_written / self.seconds if self.seconds else 0.0
        bar, eta = progress_bar(self.bytes_done / self.bytes_total if self.bytes_total else 0.0, self.seconds)
        return (
            f"{bar} articles {self.articles_seen} "
            f"(new {self.articles_new}, updated {self.articles_updated}, unchanged {self.articles_unchanged}), "
            f"chunks {self.chunks_written} ({rate:.1f}/s), errors {len(self.errors)}, ETA {eta:.0f}s"
        )

    def summary(self) -> str:
        rate = self.chunks_written / self.seconds if self.seconds else 0.0
        lines = [
            f"files {self.files}, records {self.records}, {self.seconds:.1f}s",
            f"articles: {self.articles_new} new, {self.articles_updated} updated, "
            f"{self.articles_unchanged} unchanged (not embedded again), {self.exact_copies} exact copies, "
            f"{self.duplicate_ids} repeated ids, {len(self.errors)} failed"
            + (f", {self.articles_pruned} pruned" if self.articles_pruned else ""),
            f"chunks: {self.chunks_written} written ({rate:.1f}/s), {self.chunks_deleted} removed; "
            f"{self.texts_embedded} texts embedded",
        ]
        if self.clusters:
            grouped = sum(len(m) for m in self.clusters.values())
            lines.append(f"story clusters: {len(self.clusters)} with several articles ({grouped} articles)")
            biggest = sorted(self.clusters.items(), key=lambda kv: -len(kv[1]))[:5]
            lines += [
                f"  {cid}: {len(m)} articles ({', '.join(m[:4])}{', ...' if len(m) > 4 else ''})" for cid, m in biggest
            ]
        # Every error is listed (each is a record that was not ingested); warnings can be thousands.
        lines += [f"warning: {w}" for w in self.warnings[:_SHOWN_WARNINGS]]
        if len(self.warnings) > _SHOWN_WARNINGS:
            lines.append(f"... and {len(self.warnings) - _SHOWN_WARNINGS} more warnings")
        lines += [f"error: {e}" for e in self.errors]
        return "\n".join(lines)


Progress = Callable[[IngestReport], None]


@contextmanager
def writer_lock(data_dir: Path, wait_s: float = 0.0) -> Iterator[None]:
    """One writer per data directory; another fails after ``wait_s`` (at once by default) rather than
    waiting on SQLite. API workers wait a little for each other's writes; a CLI run does not wait."""
    data_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    with (data_dir / ".ingest.lock").open("w") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if time.monotonic() >= deadline:
                    message = f"another ingest is writing to {data_dir}; wait for it to finish"
                    raise WriterBusyError(f"{message} (one writer per data directory)") from exc
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def content_hash(article: Article, settings: Settings, chunked_with: str | None = None) -> str:
    """Everything that shapes an article's stored chunks; an unchanged hash means nothing to embed.

    ``chunked_with``: the model the store records as having cut its chunks (the configured one by default).
    A reindex changes the vectors, not the chunks, and keeps that record, so the articles it re-embedded
    stay unchanged for the next ingest rather than being embedded all over again."""
    basis = {
        "article": [article.title, article.text, article.url, article.source, article.authors],
        "published_at": article.published_at.isoformat() if article.published_at else None,
        "metadata": article.metadata,
        "chunking": settings.chunking.model_dump(),
        "model": chunked_with or settings.embedding.model,
    }
    return text_hash(json.dumps(basis, sort_keys=True, default=str), 32)


def article_extra(article: Article, digest: str) -> dict[str, str | int | float | bool]:
    """Chunk metadata beyond what citations need: authors and the record's unknown fields."""
    extra: dict[str, str | int | float | bool] = {"content_hash": digest}
    if article.authors:
        extra["authors"] = "; ".join(article.authors)
    if article.metadata:
        extra["extra"] = json.dumps(article.metadata, sort_keys=True, default=str)
    return extra


@dataclass(slots=True)
class _Batch:
    chunks: list[PreparedChunk] = field(default_factory=list)
    extras: list[dict[str, str | int | float | bool]] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    records: list[ArticleRecord] = field(default_factory=list)
    bands: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    copies: list[Copy] = field(default_factory=list)


class Ingestor:
    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        store: VectorStore,
        registry: ArticleStore,
        lexical: LexicalStore | None = None,
        lock_wait_s: float = 0.0,
    ) -> None:
        self._settings = settings
        self._lock_wait_s = lock_wait_s
        self._embedder = embedder
        self._store = store
        self._registry = registry
        self._lexical = lexical or LexicalIndex(settings.lexical_db)

    @property
    def _pending(self) -> Path:
        return self._settings.data_dir / _PENDING

    def _sync_lexical(self) -> None:
        """Rebuild the lexical index from Chroma when a run died between their writes, or they disagree.

        Counting alone would miss a run that died after Chroma replaced an article's chunks with as many
        new ones: the counts agree, the ids do not. So a batch marks itself pending before it writes Chroma
        and unmarks after the lexical index has followed; a mark found here means they may differ."""
        if self._pending.exists() or self._lexical.count() != self._store.count():
            self._lexical.rebuild(self._store.iter_chunks())
        else:
            self._lexical.ensure_current(self._store.iter_chunks)
        self._pending.unlink(missing_ok=True)

    def _articles(
        self, paths: Iterable[Path], report: IngestReport, origin: str | None = None
    ) -> Iterator[tuple[Article, str, LoadError]]:
        """Articles from files with the place each came from (for warnings), broken records reported."""
        files = list(iter_files(paths))
        report.bytes_total = sum(f.stat().st_size for f in files if isinstance(f, Path) and f != STDIN)
        for item in files:
            if isinstance(item, LoadError):
                report.errors.append(item)
                continue
            report.files += 1
            item_origin = origin or ("-" if item == STDIN else str(item.resolve()))
            base = report.bytes_done
            for rec, offset in load_file(item):
                report.bytes_done = base + offset
                if isinstance(rec, LoadError):
                    report.errors.append(rec)
                    continue
                report.records += 1
                try:
                    article, warnings = article_from_record(rec.data, self._settings.ingest.max_chars)
                except RecordError as exc:
                    report.errors.append(LoadError(rec.path, rec.line, str(exc)))
                    continue
                report.warnings.extend(LoadError(rec.path, rec.line, w) for w in warnings)
                yield article, item_origin, LoadError(rec.path, rec.line, "")

    def _checked(
        self, items: Iterable[tuple[Article, str, LoadError]], report: IngestReport
    ) -> Iterator[tuple[Article, str]]:
        """The run's rules for every article, wherever it came from: first id wins, long texts are cut."""
        seen: set[str] = set()
        max_chars = self._settings.ingest.max_chars
        for article, origin, where in items:
            if article.id in seen:
                report.duplicate_ids += 1
                report.warnings.append(replace(where, message=f"id {article.id!r} seen before; skipped"))
                continue
            seen.add(article.id)
            if len(article.text) > max_chars:
                message = f"text of {len(article.text):,} characters cut to {max_chars:,}"
                report.warnings.append(replace(where, message=message))
                article = replace(article, text=article.text[:max_chars])
            yield article, origin

    def ingest(
        self, paths: Iterable[Path], progress: Progress | None = None, prune: bool = False, origin: str | None = None
    ) -> IngestReport:
        """Ingest ``paths``; with ``prune``, also remove articles that came from these paths but are gone.

        ``origin`` is recorded instead of each file's own path (an upload's temporary file is no origin)."""
        paths = list(paths)
        report = IngestReport()
        origins = [str(p.resolve()) for p in paths if p != STDIN] if prune else None
        return self._run(self._articles(paths, report, origin), report, progress, origins)

    def ingest_articles(
        self, articles: Iterable[tuple[Article, LoadError]], origin: str, progress: Progress | None = None
    ) -> IngestReport:
        """Ingest articles that did not come from files (an HTTP request); ``LoadError`` says where each is."""
        report = IngestReport()
        return self._run(((a, origin, where) for a, where in articles), report, progress, None)

    def _run(
        self,
        items: Iterable[tuple[Article, str, LoadError]],
        report: IngestReport,
        progress: Progress | None,
        prune_origins: list[str] | None,
    ) -> IngestReport:
        started = time.perf_counter()
        clusterer = StoryClusterer(self._registry.lsh_candidates, self._cluster_of)
        present: set[str] = set()  # stored ids whose text is still in the source (for prune)
        with storage_errors(self._settings.data_dir), writer_lock(self._settings.data_dir, self._lock_wait_s):
            self._sync_lexical()
            batch: list[tuple[Article, str]] = []
            run_texts: dict[str, str] = {}
            for article, origin in self._checked(items, report):
                batch.append((article, origin))
                if len(batch) >= self._settings.ingest.batch_articles:
                    present |= self._write(batch, report, clusterer, run_texts)
                    batch = []
                    report.seconds = time.perf_counter() - started
                    if progress:
                        progress(report)
            present |= self._write(batch, report, clusterer, run_texts)
            if prune_origins is not None:
                gone = sorted(self._registry.ids_from_origins(prune_origins) - present)
                delete_articles(self._store, self._registry, self._lexical, gone)
                report.articles_pruned = len(gone)
        report.bytes_done = report.bytes_total
        report.seconds = time.perf_counter() - started
        if progress:
            progress(report)
        return report

    def _cluster_of(self, article_ids: list[str]) -> dict[str, str]:
        return {i: r.cluster_id for i, r in self._registry.get(article_ids).items()}

    def _write(
        self,
        articles: list[tuple[Article, str]],
        report: IngestReport,
        clusterer: StoryClusterer,
        run_texts: dict[str, str],
    ) -> set[str]:
        """Store one batch; return the ids of stored articles the batch showed to be present."""
        if not articles:
            return set()
        known = self._registry.get([a.id for a, _ in articles])
        keys = {a.id: exact_key(a.text) for a, _ in articles}
        owners = self._registry.by_text_hash(list(keys.values()))
        batch = _Batch()
        present: set[str] = set()
        changed: list[tuple[Article, str, str]] = []
        copied: list[str] = []
        chunked_with = self._store.chunked_with
        for article, origin in articles:
            digest = content_hash(article, self._settings, chunked_with)
            record = known.get(article.id)
            if record is not None and record.content_hash == digest:
                report.articles_unchanged += 1
                report.outcomes[article.id] = ("unchanged", "stored before with the same content; not embedded again")
                present.add(article.id)
                continue
            key = keys[article.id]
            owner = run_texts.get(key) or owners.get(key)
            if owner is not None and owner != article.id:
                # The same text under another id: keep one copy, remember where else it ran.
                batch.copies.append(Copy(article.id, owner, article.url, article.source, origin))
                report.exact_copies += 1
                report.outcomes[article.id] = ("copy", f"same text as stored article {owner}; kept as a copy of it")
                present.add(owner)
                copied.append(article.id)
                if record is not None:  # it was a story of its own before and now repeats another
                    self._registry.delete([article.id])
                continue
            run_texts[key] = article.id
            present.add(article.id)
            changed.append((article, origin, digest))

        # A copy's own chunks go even when the registry no longer lists it (a run that died after
        # unlisting it, before its chunks were removed, left them behind).
        for chunk_ids in self._store.chunk_ids_by_article(copied).values():
            batch.stale.extend(chunk_ids)
        existing = self._store.chunk_ids_by_article([a.id for a, _, _ in changed])
        for article, origin, digest in changed:
            signature = minhash(article.text)
            cluster_id, bands = clusterer.assign(article.id, signature)
            chunks = chunk_article(
                article,
                self._embedder.count_tokens,
                model_max_tokens=self._embedder.max_tokens,
                max_tokens=self._settings.chunking.max_tokens,
                overlap_tokens=self._settings.chunking.overlap_tokens,
                with_header=self._settings.chunking.header,
                cluster_id=cluster_id,
            )
            new_ids = {p.chunk.id for p in chunks}
            old = existing.get(article.id, {})
            batch.stale.extend(cid for cid in old if cid not in new_ids)
            batch.chunks.extend(chunks)
            extra = article_extra(article, digest)
            batch.extras.extend([extra] * len(chunks))
            batch.bands[article.id] = bands
            batch.records.append(
                ArticleRecord(
                    id=article.id,
                    text_hash=keys[article.id],
                    content_hash=digest,
                    cluster_id=cluster_id,
                    title=article.title,
                    url=article.url,
                    source=article.source,
                    published_at=article.published_at.isoformat() if article.published_at else None,
                    origin=origin,
                    chunks=len(chunks),
                    signature=signature,
                )
            )
            if cluster_id != article.id:
                report.clusters.setdefault(cluster_id, [cluster_id]).append(article.id)
            if article.id in known or old:
                report.articles_updated += 1
                report.outcomes[article.id] = ("updated", _chunks(len(chunks)))
            else:
                report.articles_new += 1
                report.outcomes[article.id] = ("new", _chunks(len(chunks)))

        self._flush(batch, report)
        clusterer.flush()
        return present

    def _flush(self, batch: _Batch, report: IngestReport) -> None:
        vectors: dict[str, list[float]] = {}
        if batch.chunks:
            # Each distinct text is encoded once (wire copies share paragraphs; headers repeat).
            distinct = list(dict.fromkeys(p.embed_text for p in batch.chunks))
            vectors = dict(zip(distinct, self._embedder.embed_documents(distinct), strict=True))
            report.texts_embedded += len(distinct)
        # Marked after the embedding (most of a batch's time), so a run killed while embedding costs the
        # next one no rebuild of the lexical index.
        writes_chunks = bool(batch.chunks or batch.stale)
        if writes_chunks:
            _durable_touch(self._pending)
        if batch.chunks:
            self._store.upsert(
                [p.chunk for p in batch.chunks], [vectors[p.embed_text] for p in batch.chunks], batch.extras
            )
        self._store.delete(batch.stale)
        self._lexical.add(p.chunk for p in batch.chunks)
        self._lexical.delete(batch.stale)
        if writes_chunks:
            self._pending.unlink()
        self._registry.save(batch.records, batch.bands, batch.copies)
        report.chunks_written += len(batch.chunks)
        report.chunks_deleted += len(batch.stale)


def _durable_touch(path: Path) -> None:
    """Create ``path`` and make its existence survive a crash of the machine, not only of the process."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def delete_articles(store: VectorStore, registry: ArticleStore, lexical: LexicalStore, article_ids: list[str]) -> int:
    """Remove articles' chunks from both indexes, then their registry rows (with copies); return chunks removed."""
    chunk_ids = [cid for ids in store.chunk_ids_by_article(article_ids).values() for cid in ids]
    store.delete(chunk_ids)
    lexical.delete(chunk_ids)
    registry.delete(article_ids)
    return len(chunk_ids)


def delete_article(
    settings: Settings,
    store: VectorStore,
    registry: ArticleStore,
    lexical: LexicalStore,
    id_or_url: str,
    lock_wait_s: float = 0.0,
) -> Removal:
    """Remove an article (by id or URL) with its chunks, or one recorded copy of it."""
    with writer_lock(settings.data_dir, lock_wait_s):
        article_id, copy = registry.find(id_or_url)
        if article_id is not None:
            removed = delete_articles(store, registry, lexical, [article_id])
            return Removal("article", article_id, article_id, removed)
        if copy is not None:
            registry.delete_copy(copy.copy_id)
            return Removal("copy", copy.copy_id, copy.article_id, 0)
    raise ArticleNotFoundError(f"no article or copy with id or URL {id_or_url!r}")


def _chunks(n: int) -> str:
    return f"{n} chunk" if n == 1 else f"{n} chunks"
