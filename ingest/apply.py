"""The writes of an ingest batch: Chroma, then the lexical index, then the article registry.

Chroma is written first (one upsert, so an article's chunks appear together; then its stale chunks go)
and the registry last. A run killed anywhere is repaired by the next: an article the registry does not
know as written is simply written again, and chunk ids derived from content make that an idempotent
upsert. Between Chroma's write and the lexical index's, a pending mark in the lexical index's own table says
the two may differ (``sync_lexical``): in the shared database, a replica other than the one that died sees it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from backend.core.protocols import ArticleStore, LexicalStore, VectorStore
from backend.core.types import Article, ArticleRecord, Copy
from ingest.chunking import PreparedChunk
from ingest.dedup import MINHASH_VERSION, lsh_bands, minhash
from ingest.errors import RebuildNeeded

# Where the pending mark was kept before it moved into the lexical index: a file a run killed before the upgrade
# may have left in the data directory, still honoured (see ``sync_lexical``).
PENDING = ".ingest.pending"

Extra = dict[str, str | int | float | bool]


def article_extra(article: Article, digest: str) -> Extra:
    """Chunk metadata beyond what citations need: authors and the record's unknown fields."""
    extra: Extra = {"content_hash": digest}
    if article.authors:
        extra["authors"] = "; ".join(article.authors)
    if article.metadata:
        extra["extra"] = json.dumps(article.metadata, sort_keys=True, default=str)
    return extra


@dataclass(slots=True)
class Writes:
    """One batch's writes, as planned: chunks to store (with metadata), chunks to remove, registry rows."""

    chunks: list[PreparedChunk] = field(default_factory=list)
    extras: list[Extra] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    records: list[ArticleRecord] = field(default_factory=list)
    bands: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    copies: list[Copy] = field(default_factory=list)


def apply(
    writes: Writes,
    vectors: Sequence[list[float]],
    store: VectorStore,
    lexical: LexicalStore,
    registry: ArticleStore,
) -> None:
    """Write one batch (``vectors`` in the order of ``writes.chunks``), in the order that makes a crash
    at any point repairable by the next run."""
    writes_chunks = bool(writes.chunks or writes.stale)
    if writes_chunks:
        lexical.mark_pending()
    if writes.chunks:
        store.upsert([p.chunk for p in writes.chunks], list(vectors), writes.extras)
    store.delete(writes.stale)
    lexical.add(p.chunk for p in writes.chunks)
    lexical.delete(writes.stale)
    if writes_chunks:
        lexical.settle()
    registry.save(writes.records, writes.bands, writes.copies)


def sync_lexical(store: VectorStore, lexical: LexicalStore, legacy_mark: Path, rebuild: bool = True) -> None:
    """Rebuild the lexical index from Chroma when a run died between their writes, or they disagree.

    Counting alone would miss a run that died after Chroma replaced an article's chunks with as many
    new ones: the counts agree, the ids do not. So a batch marks the lexical index pending before it writes
    Chroma and settles it after the index has followed; a mark found here means they may differ.
    ``legacy_mark``: the file that held the mark before it moved into the index.

    ``rebuild=False`` (a server's write, inside an HTTP request): raise ``RebuildNeeded`` instead."""
    needed = lexical.pending or legacy_mark.exists() or lexical.count() != store.count()
    if not rebuild and (needed or lexical.stale):
        raise RebuildNeeded()
    if needed:
        lexical.rebuild(store.iter_chunks())
    else:
        lexical.ensure_current(store.iter_chunks)  # made by another analyzer: rebuilt before it is written
    legacy_mark.unlink(missing_ok=True)


def sync_signatures(store: VectorStore, registry: ArticleStore, rebuild: bool = True) -> int:
    """Re-sign every stored article when its near-duplicate signature was made by another MinHash (signatures
    of two versions are not comparable); return how many were re-signed. The text is the stored one, rebuilt
    from the article's chunks. ``rebuild=False``: raise ``RebuildNeeded`` instead (an HTTP request)."""
    version = registry.signature_version()
    if version == MINHASH_VERSION:
        return 0
    ids = registry.signed_ids() if version else []
    if ids and not rebuild:
        raise RebuildNeeded()
    signatures = {}
    for article_id in ids:
        signature = minhash(store.article_text(article_id))
        signatures[article_id] = (signature, lsh_bands(signature))
    registry.resign(signatures, MINHASH_VERSION)
    return len(ids)


def delete_articles(store: VectorStore, registry: ArticleStore, lexical: LexicalStore, article_ids: list[str]) -> int:
    """Remove articles' chunks from both indexes, then their registry rows (with copies); return chunks removed."""
    chunk_ids = [cid for ids in store.chunk_ids_by_article(article_ids).values() for cid in ids]
    store.delete(chunk_ids)
    lexical.delete(chunk_ids)
    registry.delete(article_ids)
    return len(chunk_ids)
