"""Followed sources: RSS/Atom feeds and news sitemaps, with their health. Reading needs a key, writing an admin key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from backend.api.deps import get_services
from backend.api.schemas import FeedHealthOut, FeedIn, FeedList, FeedOut
from backend.core.dates import parse_datetime
from backend.core.net import checked_url
from backend.services import Services
from backend.store.feeds import Source, effective_interval_s

router = APIRouter(tags=["feeds"])
write_router = APIRouter(tags=["feeds"])

FeedId = Annotated[str, Path(min_length=1, max_length=2000)]


def feed_out(source: Source, services: Services) -> FeedOut:
    return FeedOut(
        id=source.id,
        url=source.url,
        title=source.title or source.feed_title,
        kind=source.kind,  # type: ignore[arg-type]
        added_at=_when(source.added_at),
        interval_s=effective_interval_s(source, services.settings.follow),
        health=FeedHealthOut(
            status=source.last_status,
            http_status=source.http_status,
            last_fetch_at=parse_datetime(source.last_fetch_at),
            next_poll_at=datetime.fromtimestamp(source.next_at, UTC),
            failures=source.failures,
            new_articles=source.last_new,
            total_articles=source.total_new,
            last_error=source.last_error,
        ),
    )


def _when(value: str) -> datetime:
    parsed = parse_datetime(value)
    assert parsed is not None
    return parsed


@router.get("/feeds")
def list_feeds(services: Annotated[Services, Depends(get_services)]) -> FeedList:
    """Every followed source with its health: the last poll, its status and error, new articles, the next poll."""
    return FeedList(feeds=[feed_out(s, services) for s in services.feeds.sources()])


@write_router.post(
    "/feeds",
    status_code=201,
    responses={422: {"description": "Not an http(s) URL, a private address (SSRF), or followed already"}},
)
def add_feed(body: FeedIn, services: Annotated[Services, Depends(get_services)]) -> FeedOut:
    """Follow a feed or news sitemap; it is polled within seconds, then every `interval_s`. A URL that
    resolves to a private, loopback or link-local address is refused unless the server allows the network."""
    url = checked_url(body.url, services.settings.follow.networks())
    title = body.title.strip() if body.title and body.title.strip() else None
    return feed_out(services.feeds.add(url, title, body.interval_s), services)


@write_router.delete("/feeds/{feed_id:path}", status_code=204, responses={404: {"description": "No such source"}})
def remove_feed(feed_id: FeedId, services: Annotated[Services, Depends(get_services)]) -> Response:
    """Stop following a source (by id or URL); the articles it brought stay in the archive."""
    services.feeds.remove(feed_id)
    return Response(status_code=204)
