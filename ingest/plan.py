"""What a batch of incoming articles does to the archive, decided without touching it.

Given each article's id, exact-text key and content hash, and what the archive already holds (the
registry's content hashes, who owns each text, the chunk ids stored per article), the plan says which
articles are new, updated, unchanged or an exact copy of another, and which stored chunks go. No I/O:
``ingest.pipeline`` reads what the plan needs, cuts the chunks in between, and ``ingest.apply`` writes.

Two steps, because the chunks of an article to write are cut (and its story cluster chosen) between them:
``triage`` sorts the articles, ``plan_chunks`` compares the new chunk ids with the stored ones.
"""

from __future__ import annotations

import json
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from backend.core.text import text_hash
from backend.core.types import Article
from backend.settings import Settings

Outcome = Literal["new", "updated", "unchanged", "copy"]


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


@dataclass(frozen=True, slots=True)
class Incoming:
    """An article of the batch, as the plan sees it."""

    id: str
    text_key: str  # ``ingest.dedup.exact_key`` of its text: the same text under two ids is one story
    digest: str  # ``content_hash``: what shapes its chunks


@dataclass(frozen=True, slots=True)
class Triage:
    """Every incoming article sorted: unchanged, a copy of another, or to be written (chunked and embedded)."""

    unchanged: list[str] = field(default_factory=list)
    copies: dict[str, str] = field(default_factory=dict)  # copy id -> the id of the article it repeats
    to_write: list[str] = field(default_factory=list)
    # Stored articles that now repeat another: their registry rows go (their chunks go as stale).
    unlist: list[str] = field(default_factory=list)
    # Texts this batch writes, key -> id: later batches of the run find their owner here.
    claimed: dict[str, str] = field(default_factory=dict)
    # Stored ids the batch shows to be still in its source (for ``--prune``): what it keeps or writes.
    present: set[str] = field(default_factory=set)


def triage(incoming: Sequence[Incoming], stored: Mapping[str, str], owners: Mapping[str, str]) -> Triage:
    """Sort a batch (ids unique, in run order) against ``stored`` (id -> content hash in the registry)
    and ``owners`` (text key -> the id that holds that text, this run's earlier batches first).

    An article stored with the same hash is unchanged, whatever else holds its text; otherwise one whose
    text another id already holds (stored, or earlier in the run) is a copy of it; the rest are written.
    A stored owner that this very batch gives another text holds the old one no more: an article with
    that old text is no copy of it (it would be a copy of nothing, its text stored nowhere)."""
    result = Triage()
    texts = {item.id: item.text_key for item in incoming}
    for item in incoming:
        if stored.get(item.id) == item.digest:
            result.unchanged.append(item.id)
            result.present.add(item.id)
            continue
        owner = result.claimed.get(item.text_key) or owners.get(item.text_key)
        if owner is not None and texts.get(owner, item.text_key) != item.text_key:
            owner = None
        if owner is not None and owner != item.id:
            result.copies[item.id] = owner
            result.present.add(owner)
            if item.id in stored:  # it was a story of its own before and now repeats another
                result.unlist.append(item.id)
            continue
        result.claimed[item.text_key] = item.id
        result.present.add(item.id)
        result.to_write.append(item.id)
    return result


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    outcomes: dict[str, Literal["new", "updated"]]  # every written article, in order
    stale: list[str]  # stored chunk ids to delete


def plan_chunks(
    new_chunks: Mapping[str, Sequence[str]],
    stored: Container[str],
    existing: Mapping[str, Iterable[str]],
    copy_chunks: Iterable[Iterable[str]] = (),
) -> ChunkPlan:
    """Which chunks go, for the articles written (``new_chunks``: id -> the ids of its chunks now) and
    the copies (``copy_chunks``: the chunk ids stored under each).

    ``existing``: the chunk ids stored per written article. A written article is updated when the registry
    (``stored``) or the store knows it; a run that died after its chunks but before its registry row left
    chunks that make it updated, not new. A copy's own chunks all go, even where the registry no longer
    lists it (a run that died after unlisting it, before its chunks were removed, left them behind)."""
    stale = [chunk_id for ids in copy_chunks for chunk_id in ids]
    outcomes: dict[str, Literal["new", "updated"]] = {}
    for article_id, ids in new_chunks.items():
        keep = set(ids)
        old = list(existing.get(article_id, ()))
        stale.extend(chunk_id for chunk_id in old if chunk_id not in keep)
        outcomes[article_id] = "updated" if article_id in stored or old else "new"
    return ChunkPlan(outcomes, stale)
