"""Chroma as Byline's vector store.

Chroma is given embeddings explicitly: left to itself it would fetch its own ONNX model.
Metadata holds what filters need (outlet key, publication time as a number) and what
citations need (title, url, outlet, date), so a hit is self-contained.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import chromadb
import httpx
from chromadb.api import ClientAPI
from chromadb.config import Settings as ChromaClientSettings

from backend.core.dates import end_of_day, parse_datetime, start_of_day
from backend.core.errors import StoreUnavailable
from backend.core.types import Chunk, Hit, SearchQuery
from backend.settings import ChromaSettings

Scalar = str | int | float | bool

_NON_ALNUM = re.compile(r"[\W_]+", re.UNICODE)


def source_key(name: str) -> str:
    """Outlet names compared without case, spaces or punctuation ("The Verge" == "the-verge")."""
    return _NON_ALNUM.sub("", name.casefold())


@lru_cache(maxsize=256)
def source_keys(sources: tuple[str, ...]) -> frozenset[str]:
    """The keys of a filter's outlets, computed once per filter rather than once per chunk tested."""
    return frozenset(source_key(s) for s in sources)


def chunk_metadata(chunk: Chunk) -> dict[str, Scalar]:
    meta: dict[str, Scalar] = {
        "article_id": chunk.article_id,
        "position": chunk.position,
        "title": chunk.title,
        "dated": chunk.published_at is not None,
        # Undated chunks get 0 so numeric filters stay valid; ``dated`` tells them apart.
        "published_ts": int(chunk.published_at.timestamp()) if chunk.published_at else 0,
    }
    if chunk.url:
        meta["url"] = chunk.url
    if chunk.source:
        meta["source"] = chunk.source
        meta["source_key"] = source_key(chunk.source)
    if chunk.published_at:
        meta["published_at"] = chunk.published_at.isoformat()
    if chunk.cluster_id:
        meta["cluster_id"] = chunk.cluster_id
    return meta


def chunk_from_record(chunk_id: str, text: str, meta: dict[str, Any]) -> Chunk:
    published = meta.get("published_at")
    return Chunk(
        id=chunk_id,
        article_id=str(meta["article_id"]),
        position=int(meta.get("position", 0)),
        text=text,
        title=str(meta.get("title", "")),
        url=cast(str | None, meta.get("url")),
        source=cast(str | None, meta.get("source")),
        published_at=parse_datetime(published) if isinstance(published, str) else None,
        cluster_id=cast(str | None, meta.get("cluster_id")),
    )


def build_where(query: SearchQuery) -> dict[str, Any] | None:
    clauses: list[dict[str, Any]] = []
    if query.as_of is not None:
        # Undated articles cannot be shown to postdate the question, so they stay visible.
        clauses.append({"$or": [{"published_ts": {"$lte": end_of_day(query.as_of)}}, {"dated": False}]})
    filters = query.filters
    if filters.published_after is not None or filters.published_before is not None:
        clauses.append({"dated": True})
    if filters.published_after is not None:
        clauses.append({"published_ts": {"$gte": start_of_day(filters.published_after)}})
    if filters.published_before is not None:
        clauses.append({"published_ts": {"$lte": end_of_day(filters.published_before)}})
    if filters.sources:
        clauses.append({"source_key": {"$in": sorted(source_keys(filters.sources))}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def passes(chunk: Chunk, query: SearchQuery) -> bool:
    """The filters of ``build_where``, applied to a chunk in Python."""
    published = int(chunk.published_at.timestamp()) if chunk.published_at else None
    if query.as_of is not None and published is not None and published > end_of_day(query.as_of):
        return False
    f = query.filters
    if f.published_after is not None and (published is None or published < start_of_day(f.published_after)):
        return False
    if f.published_before is not None and (published is None or published > end_of_day(f.published_before)):
        return False
    return not f.sources or source_key(chunk.source or "") in source_keys(f.sources)


def join_chunks(texts: Sequence[str]) -> str:
    """Consecutive chunk texts of one article joined again, the sentences they share kept once."""
    text = ""
    for piece in texts:
        overlap = next((n for n in range(min(len(text), len(piece)), 0, -1) if text.endswith(piece[:n])), 0)
        text = text + piece[overlap:] if overlap else (f"{text}\n\n{piece}" if text else piece)
    return text


_OVERSAMPLE = 2  # as_of usually keeps most of an archive; a second, wider search covers the rest
_MIN_WIDE = 50
_MAX_WIDE = 1000


def open_client(settings: ChromaSettings, path: Path) -> ClientAPI:
    """Embedded Chroma over ``path``, or a client of the Chroma server the settings name."""
    client_settings = ChromaClientSettings(anonymized_telemetry=False)
    if settings.mode == "http":
        try:
            return chromadb.HttpClient(
                host=settings.host,
                port=settings.port,
                ssl=settings.ssl,
                headers={k: v.get_secret_value() for k, v in settings.headers.items()},
                settings=client_settings,
                tenant=settings.tenant,
                database=settings.database,
            )
        except Exception as exc:  # the client checks the server at once: say which one, not a stack
            scheme = "https" if settings.ssl else "http"
            raise StoreUnavailable(
                f"cannot reach the Chroma server at {scheme}://{settings.host}:{settings.port}: {type(exc).__name__}"
            ) from exc
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=client_settings)


class _Guarded:
    """A collection whose calls turn a lost Chroma server into ``StoreUnavailable`` (503, not 500)."""

    def __init__(self, collection: Any) -> None:
        self._collection = collection

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._collection, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except (httpx.TransportError, ConnectionError) as exc:
                raise StoreUnavailable(f"the Chroma server does not answer ({type(exc).__name__})") from exc

        return call


class ChromaStore:
    def __init__(self, client: ClientAPI, collection: str) -> None:
        self._client = client
        self._collection = _Guarded(
            self._client.get_or_create_collection(
                collection, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
            )
        )

    @classmethod
    def embedded(cls, path: Path, collection: str) -> ChromaStore:
        return cls(open_client(ChromaSettings(), path), collection)

    def upsert(
        self,
        chunks: Sequence[Chunk],
        embeddings: Sequence[Sequence[float]],
        extra: Sequence[dict[str, Scalar]],
    ) -> None:
        """One call per batch of whole articles, so an article's chunks become visible together."""
        if not chunks:
            return
        metadatas = [{**chunk_metadata(c), **x} for c, x in zip(chunks, extra, strict=True)]
        self._collection.upsert(
            ids=[c.id for c in chunks],
            documents=[c.text for c in chunks],
            embeddings=cast(Any, [list(e) for e in embeddings]),
            metadatas=cast(Any, metadatas),
        )

    def delete(self, chunk_ids: Sequence[str]) -> None:
        if chunk_ids:
            self._collection.delete(ids=list(chunk_ids))

    def chunk_ids_by_article(self, article_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        if not article_ids:
            return found
        where: Any = {"article_id": {"$in": list(article_ids)}}
        result = self._collection.get(where=where, include=["metadatas"])
        for chunk_id, meta in zip(result["ids"], result["metadatas"] or [], strict=True):
            found.setdefault(str(meta["article_id"]), {})[chunk_id] = str(meta.get("content_hash", ""))
        return found

    def query(self, embedding: Sequence[float], query: SearchQuery, n: int) -> list[Hit]:
        """The ``n`` nearest chunks that pass the query's filters.

        Chroma's filtered search scans metadata and is slow (about 130 ms on 29k chunks against
        10 ms unfiltered), while ``as_of`` usually keeps most of an archive. So the nearest
        ``n * _OVERSAMPLE`` (then 1,000) chunks are fetched unfiltered and filtered here; only when too few
        survive does the filtered search run. Both give the same ranking: the filtered ranking
        is the unfiltered one with the excluded chunks taken out.
        """
        # No count() first: it costs about 20 ms on 29k chunks, and a search that returns fewer
        # than it asked for has seen the whole collection anyway.
        where = build_where(query)
        if where is not None:
            # Two widths: the first suits a filter that keeps most chunks, the second one that
            # keeps a fraction (an early as_of in a recent archive); rarer filters go to Chroma.
            for width in (max(n * _OVERSAMPLE, _MIN_WIDE), _MAX_WIDE):
                found = self._search(embedding, width, None)
                hits = [h for h in found if passes(h.chunk, query)]
                if len(hits) >= n or len(found) < width:
                    return hits[:n]
        return self._search(embedding, n, where)

    def _search(self, embedding: Sequence[float], n: int, where: dict[str, Any] | None) -> list[Hit]:
        result = self._collection.query(
            query_embeddings=cast(Any, [list(embedding)]),
            n_results=n,
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        ids = result["ids"][0]
        documents = (result["documents"] or [[]])[0]
        metadatas = (result["metadatas"] or [[]])[0]
        distances = (result["distances"] or [[]])[0]
        return [
            Hit(chunk=chunk_from_record(i, d, dict(m)), score=1.0 - float(dist))
            for i, d, m, dist in zip(ids, documents, metadatas, distances, strict=True)
        ]

    def get_chunks(self, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        if not chunk_ids:
            return {}
        result = self._collection.get(ids=list(chunk_ids), include=["documents", "metadatas"])
        documents = result["documents"] or []
        metadatas = result["metadatas"] or []
        return {
            i: chunk_from_record(i, d, dict(m)) for i, d, m in zip(result["ids"], documents, metadatas, strict=True)
        }

    def iter_chunks(self, page: int = 2000) -> Iterator[Chunk]:
        """Every stored chunk, page by page (for building the lexical index and for evaluation)."""
        offset = 0
        while True:
            result = self._collection.get(include=["documents", "metadatas"], limit=page, offset=offset)
            ids = result["ids"]
            if not ids:
                return
            documents = result["documents"] or []
            metadatas = result["metadatas"] or []
            for i, d, m in zip(ids, documents, metadatas, strict=True):
                yield chunk_from_record(i, d, dict(m))
            offset += len(ids)

    def article_text(self, article_id: str) -> str:
        """An article's stored text, rebuilt from its chunks in order, each overlap kept once."""
        result = self._collection.get(where={"article_id": article_id}, include=["documents", "metadatas"])
        parts = sorted(
            zip(result["metadatas"] or [], result["documents"] or [], strict=True),
            key=lambda pair: int(cast(int, pair[0]["position"])),
        )
        return join_chunks([text for _, text in parts])

    def chunk_index(self) -> dict[str, tuple[str, int]]:
        """Every chunk id with its article and position (a full scan; for checks and status, not queries)."""
        result = self._collection.get(include=["metadatas"])
        return {
            i: (str(m["article_id"]), int(cast(int, m["position"])))
            for i, m in zip(result["ids"], result["metadatas"] or [], strict=True)
        }

    def count(self) -> int:
        return int(self._collection.count())
