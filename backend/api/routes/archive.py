from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, UploadFile

from backend.api.deps import get_services
from backend.api.schemas import (
    ArchiveOut,
    ArticleList,
    ArticleOut,
    ArticleOutcomeOut,
    ArticlesAdded,
    ArticlesIn,
    ArticleSummaryOut,
    CopyOut,
    FileFormatOut,
    FileOutcomeOut,
    FilesAdded,
    FormatsOut,
    OutletOut,
    RemovalOut,
)
from backend.core.dates import parse_datetime
from backend.core.errors import Busy, InvalidRequest, NotFound
from backend.core.protocols import ArchiveWriter
from backend.services import Services
from backend.store.articles import ArticleRecord

router = APIRouter(tags=["archive"])
# Writes: included with the admin-key check; uploads also with their own body size limit.
write_router = APIRouter(tags=["archive"])
upload_router = APIRouter(tags=["archive"])

ArticleId = Annotated[str, Path(min_length=1, max_length=500)]
_WRITE_ERRORS: dict[int | str, dict[str, str]] = {
    403: {"description": "A key that may read but not write"},
    503: {"description": "Another writer holds the archive (Retry-After), or this server does not write"},
}


def _writer(services: Services) -> ArchiveWriter:
    if services.writer is None:
        raise Busy("this server was started read-only; it does not accept articles", retry_after_s=3600)
    return services.writer


@router.get("/archive")
def archive(services: Annotated[Services, Depends(get_services)]) -> ArchiveOut:
    """What the archive holds: counts, the publication date range, outlets with their counts, last ingest."""
    count, first, last = services.registry.span()
    return ArchiveOut(
        articles=count,
        chunks=services.store.count(),
        first_published=parse_datetime(first),
        last_published=parse_datetime(last),
        last_ingest=parse_datetime(services.registry.last_ingested()),
        outlets=[OutletOut(name=n, articles=c) for n, c in services.registry.outlets().items()],
    )


@router.get(
    "/archive/formats", responses={503: {"description": "This server was started read-only: it reads no files"}}
)
def formats(services: Annotated[Services, Depends(get_services)]) -> FormatsOut:
    """The kinds of file ``POST /articles/files`` reads, by suffix (as ``byline ingest`` does), for a file picker."""
    known = _writer(services).formats()
    return FormatsOut(
        formats=[FileFormatOut.from_core(f) for f in known], suffixes=[s for f in known for s in f.suffixes]
    )


@router.get("/articles/{article_id:path}", responses={404: {"description": "No such article"}})
def article(
    article_id: ArticleId,
    services: Annotated[Services, Depends(get_services)],
) -> ArticleOut:
    """One article with its full text, so a citation can be opened; an exact copy's id finds the original."""
    found, copy = services.registry.find(article_id)
    stored_id = found or (copy.article_id if copy else None)
    record = services.registry.get([stored_id]).get(stored_id) if stored_id else None
    if record is None:
        raise NotFound(f"no article with id {article_id!r}")
    copies = services.registry.copies([record.id]).get(record.id, [])
    return ArticleOut(
        **_described(record),
        cluster_id=record.cluster_id,
        copies=[CopyOut(id=c.copy_id, url=c.url, source=c.source) for c in copies],
        text=services.store.article_text(record.id),
    )


@router.get("/articles")
def list_articles(
    services: Annotated[Services, Depends(get_services)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    source: Annotated[str | None, Query(max_length=500, description="Only this outlet.")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Words the title contains.")] = None,
) -> ArticleList:
    """Browse the archive, newest first; ``POST /search`` searches the text."""
    total, records = services.registry.listing(limit, offset, source or None, (q or "").strip() or None)
    return ArticleList(
        total=total,
        articles=[ArticleSummaryOut(**_described(r), chunks=r.chunks) for r in records],
    )


def _described(record: ArticleRecord) -> dict[str, Any]:
    """What every view of a stored article shows of it."""
    return {
        "id": record.id,
        "title": record.title,
        "url": record.url,
        "source": record.source,
        "published_at": parse_datetime(record.published_at),
    }


@write_router.post("/articles", responses=_WRITE_ERRORS)
def add_articles(body: ArticlesIn, services: Annotated[Services, Depends(get_services)]) -> ArticlesAdded:
    """Ingest articles through the same pipeline as ``byline ingest``: cleaned, deduplicated against
    the archive, chunked and embedded. Each gets a status in request order; a bad one fails alone."""
    limit = services.settings.api.max_articles_per_request
    if len(body.articles) > limit:
        raise InvalidRequest(f"at most {limit} articles per request; this one has {len(body.articles)}")
    records = [a.model_dump(exclude_none=True) for a in body.articles]
    return ArticlesAdded(results=[ArticleOutcomeOut.from_core(o) for o in _writer(services).add(records)])


@upload_router.post("/articles/files", responses={**_WRITE_ERRORS, 413: {"description": "Upload too large"}})
def add_files(files: list[UploadFile], services: Annotated[Services, Depends(get_services)]) -> FilesAdded:
    """Upload files to ingest, each read by its suffix (``GET /archive/formats`` lists them; JSONL, CSV, HTML, ...).
    Each file is reported by name: records read, what was stored, every record that failed and why."""
    limit = services.settings.api.max_articles_per_request
    if len(files) > limit:
        raise InvalidRequest(f"at most {limit} files per request; this one has {len(files)}")
    writer = _writer(services)
    return FilesAdded(files=[FileOutcomeOut.from_core(writer.add_file(f.filename or "upload", f.file)) for f in files])


@write_router.delete(
    "/articles/{article_id:path}", responses={**_WRITE_ERRORS, 404: {"description": "No such article"}}
)
def delete_article(article_id: ArticleId, services: Annotated[Services, Depends(get_services)]) -> RemovalOut:
    """Remove an article (by id or URL) and its chunks, or one recorded copy of it (its id or URL)."""
    removed = _writer(services).delete(article_id)
    return RemovalOut(kind=removed.kind, id=removed.id, article_id=removed.article_id, chunks=removed.chunks)
