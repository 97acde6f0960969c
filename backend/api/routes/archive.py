from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from backend.api.deps import get_services
from backend.api.schemas import ArchiveOut, ArticleOut, CopyOut, OutletOut
from backend.core.dates import parse_datetime
from backend.core.errors import NotFound
from backend.services import Services

router = APIRouter(tags=["archive"])


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


@router.get("/articles/{article_id}", responses={404: {"description": "No such article"}})
def article(
    article_id: Annotated[str, Path(min_length=1, max_length=500)],
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
        id=record.id,
        title=record.title,
        url=record.url,
        source=record.source,
        published_at=parse_datetime(record.published_at),
        cluster_id=record.cluster_id,
        copies=[CopyOut(id=c.copy_id, url=c.url, source=c.source) for c in copies],
        text=services.store.article_text(record.id),
    )
