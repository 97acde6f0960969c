"""``byline reindex``: every chunk of the archive embedded again with the configured embedder.

The chunks come from the store (texts and metadata as they are; chunk ids, the BM25 index and the article
registry do not change) and go, with their new vectors, to a collection of their own named by the encoder
(``<name>__reindex_<key>``), in batches. The live collection serves the old vectors until the new one is
complete; then one write on the archive's pointer swaps them and the old collection is dropped.

A run killed at any point is resumed by the next: the new collection keeps what was written, a chunk
already there with the same metadata is not embedded again, one whose metadata changed since (an ingest
under the old encoder in between) is updated, and one no longer in the archive is removed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from backend.core.protocols import Embedder
from backend.settings import DEFAULT_EMBEDDING_MODEL, Settings
from backend.store.chroma import ChromaStore, Record, chunk_from_record, open_client, remove_dropped_files
from ingest.chunking import embed_text
from ingest.lock import writer_lock
from ingest.report import progress_bar
from ingest.storage import storage_errors


@dataclass(slots=True)
class ReindexReport:
    source: str  # the encoder that made the old vectors, in words
    target: str  # the configured one
    collection: str = ""  # the live collection at the end
    chunks_total: int = 0
    chunks_seen: int = 0
    chunks_embedded: int = 0
    chunks_kept: int = 0  # already in the new collection from an interrupted run
    chunks_removed: int = 0  # in the new collection from an interrupted run, gone from the archive since
    too_long: int = 0  # embedded texts beyond the new model's window (their tails are invisible)
    swapped: bool = False
    retired: list[str] = field(default_factory=list)  # the old live collection, dropped after the swap
    dropped: list[str] = field(default_factory=list)  # what interrupted runs left
    seconds: float = 0.0

    def progress_line(self) -> str:
        """One line for a progress display, as ingest's: share done, chunks, rate, ETA."""
        bar, eta = progress_bar(self.chunks_seen / self.chunks_total if self.chunks_total else 0.0, self.seconds)
        rate = self.chunks_embedded / self.seconds if self.seconds else 0.0
        return (
            f"{bar} chunks {self.chunks_seen}/{self.chunks_total} "
            f"(embedded {self.chunks_embedded}, kept {self.chunks_kept} from an earlier run), "
            f"{rate:.1f}/s, ETA {eta:.0f}s"
        )

    def summary(self) -> str:
        if not self.swapped:
            lines = [
                f"the archive's vectors were made by {self.source}, the same encoder as the configured one;"
                " nothing to do"
            ]
        else:
            rate = self.chunks_embedded / self.seconds if self.seconds else 0.0
            lines = [
                f"re-embedded the archive with {self.target} in {self.seconds:.1f}s (was: {self.source})",
                f"chunks: {self.chunks_total}; {self.chunks_embedded} embedded ({rate:.1f}/s), {self.chunks_kept} kept"
                f" from an interrupted run, {self.chunks_removed} removed",
                f"live collection: {self.collection}",
            ]
        lines += [f"dropped the old vectors (collection {name})" for name in self.retired]
        lines += [f"dropped the collection {name}, left by an unfinished reindex or swap" for name in self.dropped]
        if self.too_long:
            lines.append(
                f"warning: {self.too_long} chunks are longer than the new model's window and were cut when embedded;"
                " ingest the articles again to chunk them for it"
            )
        return "\n".join(lines)


Progress = Callable[[ReindexReport], None]


def reindex(
    settings: Settings, embedder: Embedder, progress: Progress | None = None, batch_size: int = 256
) -> ReindexReport:
    """Re-embed the archive in ``settings.data_dir`` with ``embedder``, under the ingest's writer lock.

    Nothing to do where the live vectors are already the embedder's (``EncoderIdentity.compatible``); an
    archive from before encoders were recorded is always re-embedded, since who made it is unknown."""
    started = time.perf_counter()
    target = embedder.identity()
    with storage_errors(settings.data_dir), writer_lock(settings) as held:
        client = open_client(settings.chroma, settings.chroma_dir)
        live = ChromaStore(client, settings.chroma.collection)  # opened as it is: it may be another encoder's
        recorded = live.encoder
        report = ReindexReport(
            source=recorded.describe() if recorded else "an unrecorded encoder", target=target.describe()
        )
        if recorded is not None and recorded.compatible(target):
            report.dropped = live.drop_others(keep=live.name)
            report.collection = live.name
            _remove_dropped_files(settings)
            report.seconds = time.perf_counter() - started
            return report
        # A legacy archive's hashes carry the model every archive used then: the default.
        staged = live.stage(target, live.chunked_with or DEFAULT_EMBEDDING_MODEL)
        report.dropped = live.drop_others(keep=staged.name)
        report.chunks_total = live.count()
        seen: set[str] = set()
        for records in live.iter_records(batch_size):
            held.check()
            seen.update(r[0] for r in records)
            present = staged.metadatas([r[0] for r in records])
            staged.update_metadatas([r for r in records if r[0] in present and present[r[0]] != r[2]])
            todo = [r for r in records if r[0] not in present]
            _embed(settings, embedder, staged, todo, report)
            report.chunks_kept += len(records) - len(todo)
            report.chunks_seen += len(records)
            report.seconds = time.perf_counter() - started
            if progress:
                progress(report)
        stale = sorted(staged.ids() - seen)
        staged.delete(stale)
        report.chunks_removed = len(stale)
        report.retired = live.promote(staged)
        report.collection = staged.name
        report.swapped = True
        _remove_dropped_files(settings)
    report.seconds = time.perf_counter() - started
    return report


def _embed(
    settings: Settings, embedder: Embedder, staged: ChromaStore, records: list[Record], report: ReindexReport
) -> None:
    if not records:
        return
    texts = [embed_text(chunk_from_record(*record), settings.chunking.header) for record in records]
    # Each distinct text is encoded once, as ingest does (wire copies share paragraphs).
    distinct = list(dict.fromkeys(texts))
    vectors = dict(zip(distinct, embedder.embed_documents(distinct), strict=True))
    report.too_long += sum(n > embedder.max_tokens for n in embedder.count_tokens(distinct))
    staged.write_records(records, [vectors[t] for t in texts])
    report.chunks_embedded += len(records)


def _remove_dropped_files(settings: Settings) -> None:
    # A Chroma server keeps its own files; embedded Chroma leaves a dropped collection's on disk.
    if settings.chroma.mode == "embedded":
        remove_dropped_files(settings.chroma_dir)
