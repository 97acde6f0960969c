"""Chroma as Byline's vector store.

Chroma is given embeddings explicitly: left to itself it would fetch its own ONNX model.
Metadata holds what filters need (outlet key, publication time as a number) and what
citations need (title, url, outlet, date), so a hit is self-contained.

The collection's own metadata records the encoder that made its vectors (``backend.core.encoder``); a
store opened for an encoder that cannot be compared with it refuses (``EncoderMismatch``). After
``byline reindex`` the vectors live in another collection, which a pointer collection names
(``live_collection``); a store is opened by the archive's name and follows the pointer.
"""

from __future__ import annotations

import logging
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any, cast

import chromadb
import httpx
from chromadb.api import ClientAPI
from chromadb.config import Settings as ChromaClientSettings
from chromadb.errors import NotFoundError

from backend.core.dates import end_of_day, parse_datetime, start_of_day
from backend.core.encoder import EncoderIdentity
from backend.core.errors import EncoderMismatch, StoreUnavailable
from backend.core.filters import matches
from backend.core.text import source_key, source_keys
from backend.core.types import Chunk, Hit, SearchQuery
from backend.settings import ChromaSettings

Scalar = str | int | float | bool


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


# The metadata ``chunk_metadata`` writes only when the chunk has them.
_OPTIONAL_FIELDS = ("url", "source", "source_key", "published_at", "cluster_id")


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
    """The filters of ``build_where``, applied to a chunk in Python: the reference, ``matches``."""
    return matches(chunk.published_at, chunk.source, query)


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


_COSINE: Any = {"hnsw": {"space": "cosine"}}
# On a collection's metadata: the encoder that made its vectors (``EncoderIdentity`` as JSON), and the model
# whose tokenizer cut its chunks and whose name the articles' content hashes carry (unchanged by a reindex,
# so an ingest after one finds unchanged articles unchanged).
_ENCODER = "byline_encoder"
_CHUNKED_WITH = "byline_chunked_with"
# On the pointer collection ``<name>__live``: the name of the collection that holds the archive's vectors.
_LIVE = "byline_live"
_POINTER = "__live"
_STAGING = "__reindex_"

log = logging.getLogger("byline.store")

Record = tuple[str, str, dict[str, Scalar]]  # a stored chunk as Chroma keeps it: id, text, metadata


def live_collection(client: ClientAPI, name: str) -> str:
    """The collection that holds the archive ``name``'s vectors: ``name`` itself until ``byline reindex``
    swaps in another, by writing its name on a small pointer collection (one write, so readers see the old
    vectors or the new, never a mix)."""
    try:
        pointer = client.get_collection(name + _POINTER, embedding_function=None)
    except NotFoundError:
        return name
    return str((pointer.metadata or {}).get(_LIVE) or name)


_SEGMENT_FOLDER = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def remove_dropped_files(path: Path) -> int:
    """Delete the index folders that embedded Chroma keeps for collections it has dropped; returns how many.

    Chroma 1.5 removes a dropped collection from its catalogue but leaves its vector index on disk
    (chroma-core/chroma#5259), so each reindex would leave a full copy of the old vectors behind. A folder goes
    only when it is named like a segment and the catalogue has no segment of that id."""
    catalogue = path / "chroma.sqlite3"
    if not catalogue.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{catalogue}?mode=ro", uri=True)) as db:
            segments = {str(row[0]) for row in db.execute("SELECT id FROM segments")}
    except sqlite3.Error as exc:  # another layout: leave the files alone
        log.warning("dropped collections' files not removed: %s", exc)
        return 0
    removed = 0
    for folder in path.iterdir():
        if folder.is_dir() and _SEGMENT_FOLDER.fullmatch(folder.name) and folder.name not in segments:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _recorded_encoder(collection: Any) -> EncoderIdentity | None:
    text = (collection.metadata or {}).get(_ENCODER)
    if not isinstance(text, str):
        return None
    try:
        return EncoderIdentity.from_json(text)
    except ValueError:
        log.warning("collection %r records an encoder this version cannot read: %s", collection.name, text)
        return None


def _writable(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    # Chroma refuses a metadata update that names the distance function, even unchanged (old collections have it).
    return {k: v for k, v in (metadata or {}).items() if not k.startswith("hnsw:")}


class _Guarded:
    """A collection whose calls turn a lost Chroma server into ``StoreUnavailable`` (503, not 500).

    A collection dropped under a running reader (``byline reindex`` swapped in a new one, a server in http
    mode still holding the old) is opened again through ``reopen``, which checks the new one's encoder."""

    def __init__(self, collection: Any, reopen: Callable[[], Any] | None = None) -> None:
        self.collection = collection
        self._reopen = reopen

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                try:
                    return getattr(self.collection, name)(*args, **kwargs)
                except NotFoundError:
                    stale = self.collection
                    if self._reopen is None:
                        raise
                    self.collection = self._reopen()
                    if self.collection.id == stale.id:
                        raise
                    return getattr(self.collection, name)(*args, **kwargs)
            except (httpx.TransportError, ConnectionError) as exc:
                raise StoreUnavailable(f"the Chroma server does not answer ({type(exc).__name__})") from exc

        return call


class ChromaStore:
    def __init__(
        self, client: ClientAPI, collection: str, encoder: EncoderIdentity | None = None, *, pinned: bool = False
    ) -> None:
        """``collection`` names the archive; its vectors live in the collection its pointer names (see
        ``live_collection``), or, ``pinned``, in exactly that collection (the one a reindex fills).

        With ``encoder`` (the configured embedder's identity) an archive whose vectors another encoder made is
        refused with ``EncoderMismatch``; an archive from before encoders were recorded is adopted; and the
        encoder is recorded on the collection with its first vectors."""
        self._client = client
        self._base = collection
        self._encoder = encoder
        self._pinned = pinned
        self._recorded = False
        self._collection = _Guarded(self._open(), None if pinned else self._open)

    def _open(self) -> Any:
        for _ in range(3):
            name = self._base if self._pinned else live_collection(self._client, self._base)
            try:
                if name == self._base:
                    collection = self._client.get_or_create_collection(
                        name, configuration=_COSINE, embedding_function=None
                    )
                else:
                    collection = self._client.get_collection(name, embedding_function=None)
            except NotFoundError:  # swapped and dropped between the two reads: read the pointer again
                continue
            if self._pinned or live_collection(self._client, self._base) == name:
                return self._checked(collection)
        raise StoreUnavailable(f"the archive's collection {self._base!r} is being swapped by a reindex; try again")

    def _checked(self, collection: Any) -> Any:
        self._recorded = False
        if self._encoder is None:
            return collection
        recorded = _recorded_encoder(collection)
        if recorded is not None and recorded.compatible(self._encoder):
            self._recorded = True
            return collection
        if collection.count() == 0:  # no vectors to mix with: the first write records the configured encoder
            return collection
        if recorded is None:
            # Written before encoders were recorded, when every archive used the default model: taken to be the
            # configured encoder's, if at least the dimensions agree.
            sample = collection.get(limit=1, include=["embeddings"])["embeddings"]
            dimension = len(sample[0]) if sample is not None and len(sample) else 0
            if dimension != self._encoder.dimension:
                unknown = f"an unrecorded encoder of {dimension} dimensions"
                raise EncoderMismatch(self._mismatch(collection.name, unknown))
            collection = self._record(collection)
            log.warning(
                "the archive's collection %r had no encoder recorded; recorded the configured one: %s",
                collection.name,
                self._encoder.describe(),
            )
            return collection
        raise EncoderMismatch(self._mismatch(collection.name, recorded.describe(), recorded.model))

    def _mismatch(self, name: str, made_by: str, model: str | None = None) -> str:
        assert self._encoder is not None
        back = f"configure the model that made them (BYLINE_EMBEDDING__MODEL={model})" if model else None
        return (
            f"the archive's vectors (Chroma collection {name!r}) were made by {made_by}, but the configured embedder"
            f" is {self._encoder.describe()}; vectors of two encoders cannot be compared. Run `byline reindex` to"
            f" re-embed the archive with the configured embedder" + (f", or {back}" if back else "")
        )

    def _record(self, collection: Any) -> Any:
        """Record this store's encoder on ``collection`` (before its first vectors); returns the collection."""
        assert self._encoder is not None
        recorded = _recorded_encoder(collection)
        if recorded is not None and not recorded.compatible(self._encoder) and collection.count() == 0:
            # Emptied under another encoder: Chroma keeps the old dimension, so the collection starts afresh.
            self._client.delete_collection(collection.name)
            collection = self._client.create_collection(collection.name, configuration=_COSINE, embedding_function=None)
        metadata = _writable(collection.metadata)
        metadata[_ENCODER] = self._encoder.to_json()
        metadata.setdefault(_CHUNKED_WITH, self._encoder.model)
        collection.modify(metadata=metadata)
        self._recorded = True
        return collection

    @property
    def name(self) -> str:
        """The collection that holds the vectors (the archive's name, or the one a reindex swapped in)."""
        return str(self._collection.collection.name)

    @property
    def encoder(self) -> EncoderIdentity | None:
        """The encoder recorded as having made the vectors (None: not recorded yet)."""
        return _recorded_encoder(self._collection.collection)

    @property
    def chunked_with(self) -> str | None:
        """The model whose name the articles' content hashes carry (None: not recorded yet)."""
        value = (self._collection.collection.metadata or {}).get(_CHUNKED_WITH)
        return value if isinstance(value, str) else None

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
        if self._encoder is not None and not self._recorded:
            self._collection.collection = self._record(self._collection.collection)
        # Chroma's upsert merges metadata into a stored record's: a field the chunk no longer has (a date
        # taken back, a cluster dissolved) is removed by naming it with None, or its old value would stay.
        absent: dict[str, Scalar | None] = dict.fromkeys(_OPTIONAL_FIELDS)
        metadatas = [{**absent, **chunk_metadata(c), **x} for c, x in zip(chunks, extra, strict=True)]
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

    def chunks_with_vectors(self, article_ids: Sequence[str]) -> list[tuple[Chunk, list[float]]]:
        if not article_ids:
            return []
        where: Any = {"article_id": {"$in": list(dict.fromkeys(article_ids))}}
        result = self._collection.get(where=where, include=["documents", "metadatas", "embeddings"])
        documents = result["documents"] or []
        metadatas = result["metadatas"] or []
        embeddings = result["embeddings"]
        vectors = [] if embeddings is None else [[float(x) for x in e] for e in embeddings]
        found = [
            (chunk_from_record(i, d, dict(m)), v)
            for i, d, m, v in zip(result["ids"], documents, metadatas, vectors, strict=True)
        ]
        return sorted(found, key=lambda pair: (pair[0].article_id, pair[0].position))

    def iter_chunks(self, page: int = 2000) -> Iterator[Chunk]:
        """Every stored chunk, page by page (for building the lexical index and for evaluation)."""
        for records in self.iter_records(page):
            for i, d, m in records:
                yield chunk_from_record(i, d, m)

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

    # A reindex: records read page by page from the live collection, written with new vectors to a collection
    # of their own (``stage``), which ``promote`` makes the live one.

    def iter_records(self, page: int = 500) -> Iterator[list[Record]]:
        """Every stored chunk as Chroma keeps it, a page at a time (in a stable order while nothing writes)."""
        offset = 0
        while True:
            result = self._collection.get(include=["documents", "metadatas"], limit=page, offset=offset)
            ids = result["ids"]
            if not ids:
                return
            documents = result["documents"] or []
            metadatas = result["metadatas"] or []
            yield [(i, d, dict(m)) for i, d, m in zip(ids, documents, metadatas, strict=True)]
            offset += len(ids)

    def metadatas(self, chunk_ids: Sequence[str]) -> dict[str, dict[str, Scalar]]:
        """The metadata of those of ``chunk_ids`` that are stored."""
        if not chunk_ids:
            return {}
        result = self._collection.get(ids=list(chunk_ids), include=["metadatas"])
        return {i: dict(m) for i, m in zip(result["ids"], result["metadatas"] or [], strict=True)}

    def ids(self) -> set[str]:
        return set(self._collection.get(include=[])["ids"])

    def write_records(self, records: Sequence[Record], embeddings: Sequence[Sequence[float]]) -> None:
        if not records:
            return
        self._collection.upsert(
            ids=[r[0] for r in records],
            documents=[r[1] for r in records],
            embeddings=cast(Any, [list(e) for e in embeddings]),
            metadatas=cast(Any, [r[2] for r in records]),
        )

    def update_metadatas(self, records: Sequence[Record]) -> None:
        if records:
            self._collection.update(ids=[r[0] for r in records], metadatas=cast(Any, [r[2] for r in records]))

    def stage(self, encoder: EncoderIdentity, chunked_with: str) -> ChromaStore:
        """The collection a reindex to ``encoder`` fills, ``<name>__reindex_<key>``: found again after an
        interruption, with what it holds, since its name depends on the encoder alone."""
        name = f"{self._base}{_STAGING}{encoder.key()}"
        metadata = {_ENCODER: encoder.to_json(), _CHUNKED_WITH: chunked_with}
        self._client.get_or_create_collection(name, configuration=_COSINE, metadata=metadata, embedding_function=None)
        return ChromaStore(self._client, name, encoder, pinned=True)

    def promote(self, staged: ChromaStore) -> list[str]:
        """Make ``staged`` the archive's live collection, then drop the old one; returns the names dropped.

        The swap is one metadata write on the pointer collection: until it, every reader (a server in http
        mode) is served the old vectors; after it, a reader opens the new collection and checks its encoder."""
        metadata = {_LIVE: staged.name}
        pointer = self._client.get_or_create_collection(
            self._base + _POINTER, metadata=metadata, embedding_function=None
        )
        if (pointer.metadata or {}).get(_LIVE) != staged.name:
            pointer.modify(metadata=metadata)
        return self.drop_others(keep=staged.name)

    def drop_others(self, keep: str) -> list[str]:
        """Drop the archive's collections that are neither live nor ``keep``: an unfinished reindex to another
        encoder, or the old collection of a swap interrupted before it was dropped."""
        live = live_collection(self._client, self._base)
        dropped = []
        for collection in self._client.list_collections():
            name = str(collection.name)
            if (name == self._base or name.startswith(self._base + _STAGING)) and name not in {live, keep}:
                self._client.delete_collection(name)
                dropped.append(name)
        return dropped
