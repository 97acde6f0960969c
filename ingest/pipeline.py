"""The ingest run: files -> articles -> chunks -> embeddings -> store, in batches of whole articles."""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from backend.core.protocols import Embedder, VectorStore
from backend.core.text import text_hash
from backend.core.types import Article
from backend.settings import Settings
from ingest.chunking import PreparedChunk, chunk_article
from ingest.loaders import LoadError, iter_files, load_file
from ingest.normalize import RecordError, article_from_record

_ARTICLES_PER_BATCH = 32


class WriterBusyError(RuntimeError):
    """Another ingest holds the data directory."""


@dataclass(slots=True)
class IngestReport:
    files: int = 0
    records: int = 0
    articles_new: int = 0
    articles_updated: int = 0
    articles_unchanged: int = 0
    duplicates: int = 0
    chunks_written: int = 0
    chunks_deleted: int = 0
    errors: list[LoadError] = field(default_factory=list)
    warnings: list[LoadError] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def articles_stored(self) -> int:
        return self.articles_new + self.articles_updated

    def summary(self) -> str:
        lines = [
            f"files {self.files}, records {self.records}",
            f"articles: {self.articles_new} new, {self.articles_updated} updated, "
            f"{self.articles_unchanged} unchanged, {self.duplicates} duplicate ids, {len(self.errors)} failed",
            f"chunks: {self.chunks_written} written, {self.chunks_deleted} removed; {self.seconds:.1f}s",
        ]
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"error: {e}" for e in self.errors]
        return "\n".join(lines)


Progress = Callable[[IngestReport], None]


@contextmanager
def writer_lock(data_dir: Path) -> Iterator[None]:
    """One writer per data directory; a second one fails at once instead of waiting on SQLite."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / ".ingest.lock").open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise WriterBusyError(f"another ingest is writing to {data_dir}; wait for it to finish") from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def content_hash(article: Article, settings: Settings) -> str:
    """Everything that shapes an article's stored chunks; unchanged hash means nothing to embed."""
    basis = {
        "article": [article.title, article.text, article.url, article.source, article.authors],
        "published_at": article.published_at.isoformat() if article.published_at else None,
        "metadata": article.metadata,
        "chunking": settings.chunking.model_dump(),
        "model": settings.embedding.model,
    }
    return text_hash(json.dumps(basis, sort_keys=True, default=str), 32)


class Ingestor:
    def __init__(self, settings: Settings, embedder: Embedder, store: VectorStore) -> None:
        self._settings = settings
        self._embedder = embedder
        self._store = store

    def _articles(self, paths: Iterable[Path], report: IngestReport) -> Iterator[Article]:
        seen: set[str] = set()
        for item in iter_files(paths):
            if isinstance(item, LoadError):
                report.errors.append(item)
                continue
            report.files += 1
            for rec in load_file(item):
                if isinstance(rec, LoadError):
                    report.errors.append(rec)
                    continue
                report.records += 1
                try:
                    article, warnings = article_from_record(rec.data)
                except RecordError as exc:
                    report.errors.append(LoadError(rec.path, rec.line, str(exc)))
                    continue
                report.warnings.extend(LoadError(rec.path, rec.line, w) for w in warnings)
                if article.id in seen:
                    report.duplicates += 1
                    continue
                seen.add(article.id)
                yield article

    def ingest(self, paths: Iterable[Path], progress: Progress | None = None) -> IngestReport:
        report = IngestReport()
        started = time.perf_counter()
        with writer_lock(self._settings.data_dir):
            batch: list[Article] = []
            for article in self._articles(paths, report):
                batch.append(article)
                if len(batch) >= _ARTICLES_PER_BATCH:
                    self._write(batch, report)
                    batch = []
                    report.seconds = time.perf_counter() - started
                    if progress:
                        progress(report)
            self._write(batch, report)
        report.seconds = time.perf_counter() - started
        if progress:
            progress(report)
        return report

    def _write(self, articles: list[Article], report: IngestReport) -> None:
        if not articles:
            return
        existing = self._store.chunk_ids_by_article([a.id for a in articles])
        prepared: list[PreparedChunk] = []
        extras: list[dict[str, str | int | float | bool]] = []
        stale: list[str] = []
        for article in articles:
            digest = content_hash(article, self._settings)
            old = existing.get(article.id, {})
            if old and set(old.values()) == {digest}:
                report.articles_unchanged += 1
                continue
            chunks = chunk_article(
                article,
                self._embedder.count_tokens,
                model_max_tokens=self._embedder.max_tokens,
                max_tokens=self._settings.chunking.max_tokens,
                overlap_tokens=self._settings.chunking.overlap_tokens,
                with_header=self._settings.chunking.header,
            )
            new_ids = {p.chunk.id for p in chunks}
            stale.extend(cid for cid in old if cid not in new_ids)
            prepared.extend(chunks)
            extras.extend([article_extra(article, digest)] * len(chunks))
            if old:
                report.articles_updated += 1
            else:
                report.articles_new += 1
        if not prepared:
            return
        embeddings = self._embedder.embed_documents([p.embed_text for p in prepared])
        self._store.upsert([p.chunk for p in prepared], embeddings, extras)
        self._store.delete(stale)
        report.chunks_written += len(prepared)
        report.chunks_deleted += len(stale)


def article_extra(article: Article, digest: str) -> dict[str, str | int | float | bool]:
    """Chunk metadata beyond what citations need: authors and the record's unknown fields."""
    extra: dict[str, str | int | float | bool] = {"content_hash": digest}
    if article.authors:
        extra["authors"] = "; ".join(article.authors)
    if article.metadata:
        extra["extra"] = json.dumps(article.metadata, sort_keys=True, default=str)
    return extra
