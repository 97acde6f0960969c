"""The ingest run: files -> articles -> (dedup) -> chunks -> embeddings -> store, in batches of whole articles.

This module orchestrates; each step lives where its name says:

- ``ingest.plan``: per batch, which articles are new, updated, unchanged or a copy, and which stored
  chunks go (pure, no I/O);
- ``ingest.apply``: the writes of a batch, Chroma first and the registry last, under the pending marker,
  so that a run killed anywhere is repaired by the next;
- ``ingest.report``: the counts, the progress line and the summary;
- ``ingest.lock``: one writer per archive; ``ingest.storage``: a failed write in words;
- ``ingest.errors``: what stops a run, each a ``BylineError``.
"""

from __future__ import annotations

import time
from collections import ChainMap
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from backend.core.protocols import ArticleStore, Embedder, LexicalStore, VectorStore
from backend.core.types import Article, Removal
from backend.settings import Settings
from backend.store.articles import ArticleRecord, Copy
from backend.store.db import database_for
from backend.store.lexical import LexicalIndex
from ingest.apply import PENDING, Writes, apply, article_extra, delete_articles, sync_lexical, sync_signatures
from ingest.chunking import chunk_article
from ingest.dedup import StoryClusterer, exact_key, minhash
from ingest.errors import ArchiveWriteError, ArticleNotFoundError, WriterBusyError
from ingest.loaders import STDIN, LoadError, iter_files, load_file
from ingest.lock import writer_lock
from ingest.normalize import RecordError, article_from_record
from ingest.plan import Incoming, content_hash, plan_chunks, triage
from ingest.report import IngestReport, Progress, progress_bar
from ingest.storage import storage_errors, storage_problem

# Callers import these from here, as they did before the steps had modules of their own.
__all__ = [
    "ArchiveWriteError",
    "ArticleNotFoundError",
    "IngestReport",
    "Ingestor",
    "Progress",
    "WriterBusyError",
    "article_extra",
    "content_hash",
    "delete_article",
    "delete_articles",
    "progress_bar",
    "storage_errors",
    "storage_problem",
    "writer_lock",
]

_UNCHANGED = "stored before with the same content; not embedded again"


class Ingestor:
    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        store: VectorStore,
        registry: ArticleStore,
        lexical: LexicalStore | None = None,
        lock_wait_s: float = 0.0,
        rebuild_indexes: bool = True,
    ) -> None:
        """``rebuild_indexes=False``: a run that finds the lexical index in need of a full rebuild raises
        ``RebuildNeeded`` instead of doing it (a server's write, inside an HTTP request); ``sync``
        does it."""
        self._settings = settings
        self._lock_wait_s = lock_wait_s
        self._rebuild_indexes = rebuild_indexes
        self._embedder = embedder
        self._store = store
        self._registry = registry
        self._lexical = lexical or LexicalIndex(database_for(settings, settings.lexical_db))

    @property
    def _legacy_mark(self) -> Path:
        return self._settings.data_dir / PENDING

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

    def sync(self) -> None:
        """Bring the lexical index in line with the vector store now, rebuilding it if a run died between
        their writes or it was made by another analyzer, and re-sign articles signed by another MinHash."""
        with storage_errors(self._settings.data_dir), writer_lock(self._settings, self._lock_wait_s):
            sync_lexical(self._store, self._lexical, self._legacy_mark)
            sync_signatures(self._store, self._registry)

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
        with storage_errors(self._settings.data_dir), writer_lock(self._settings, self._lock_wait_s) as held:
            sync_lexical(self._store, self._lexical, self._legacy_mark, rebuild=self._rebuild_indexes)
            sync_signatures(self._store, self._registry, rebuild=self._rebuild_indexes)
            batch: list[tuple[Article, str]] = []
            run_texts: dict[str, str] = {}
            for article, origin in self._checked(items, report):
                batch.append((article, origin))
                if len(batch) >= self._settings.ingest.batch_articles:
                    held.check()
                    present |= self._write(batch, report, clusterer, run_texts)
                    batch = []
                    report.seconds = time.perf_counter() - started
                    if progress:
                        progress(report)
            held.check()
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
        """Plan, chunk, embed and store one batch; return the ids of stored articles it showed to be present."""
        if not articles:
            return set()
        by_id = {a.id: (a, origin) for a, origin in articles}
        known = self._registry.get(list(by_id))
        keys = {a.id: exact_key(a.text) for a, _ in articles}
        owners = self._registry.by_text_hash(list(keys.values()))
        chunked_with = self._store.chunked_with
        digests = {a.id: content_hash(a, self._settings, chunked_with) for a, _ in articles}
        incoming = [Incoming(i, keys[i], digests[i]) for i in by_id]
        sorted_out = triage(incoming, {i: r.content_hash for i, r in known.items()}, ChainMap(run_texts, owners))
        run_texts.update(sorted_out.claimed)

        writes = Writes()
        for item in incoming:
            if item.id in sorted_out.copies:
                owner = sorted_out.copies[item.id]
                article, origin = by_id[item.id]
                # The same text under another id: keep one copy, remember where else it ran.
                writes.copies.append(Copy(article.id, owner, article.url, article.source, origin))
                report.count(article.id, "copy", f"same text as stored article {owner}; kept as a copy of it")
            elif item.id in sorted_out.unchanged:
                report.count(item.id, "unchanged", _UNCHANGED)
        if sorted_out.unlist:
            # Unlisted before any story cluster is chosen, so that no article joins a story that is now a copy.
            self._registry.delete(sorted_out.unlist)

        existing = self._store.chunk_ids_by_article(sorted_out.to_write)
        new_chunks: dict[str, list[str]] = {}
        for article_id in sorted_out.to_write:
            article, origin = by_id[article_id]
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
            new_chunks[article.id] = [p.chunk.id for p in chunks]
            writes.chunks.extend(chunks)
            writes.extras.extend([article_extra(article, digests[article.id])] * len(chunks))
            writes.bands[article.id] = bands
            writes.records.append(
                ArticleRecord(
                    id=article.id,
                    text_hash=keys[article.id],
                    content_hash=digests[article.id],
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
        copy_chunks = self._store.chunk_ids_by_article(list(sorted_out.copies)).values()
        planned = plan_chunks(new_chunks, known, existing, copy_chunks)
        writes.stale = planned.stale
        for article_id, outcome in planned.outcomes.items():
            report.count(article_id, outcome, _chunks(len(new_chunks[article_id])))

        vectors = self._embed(writes, report)
        apply(writes, vectors, self._store, self._lexical, self._registry)
        report.chunks_written += len(writes.chunks)
        report.chunks_deleted += len(writes.stale)
        clusterer.flush()
        return sorted_out.present

    def _embed(self, writes: Writes, report: IngestReport) -> list[list[float]]:
        """The chunks' vectors, each distinct text encoded once (wire copies share paragraphs; headers repeat).

        Done before ``apply`` marks the batch pending: embedding is most of a batch's time, and a run killed
        while embedding then costs the next one no rebuild of the lexical index."""
        if not writes.chunks:
            return []
        distinct = list(dict.fromkeys(p.embed_text for p in writes.chunks))
        vectors = dict(zip(distinct, self._embedder.embed_documents(distinct), strict=True))
        report.texts_embedded += len(distinct)
        return [vectors[p.embed_text] for p in writes.chunks]


def delete_article(
    settings: Settings,
    store: VectorStore,
    registry: ArticleStore,
    lexical: LexicalStore,
    id_or_url: str,
    lock_wait_s: float = 0.0,
) -> Removal:
    """Remove an article (by id or URL) with its chunks, or one recorded copy of it."""
    with writer_lock(settings, lock_wait_s):
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
