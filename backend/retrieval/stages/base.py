"""What every stage after the first shares: the search as the first stage made it, and the ``Stage`` protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from backend.core.types import DateWindow, Hit, SearchFilters, SearchQuery


@dataclass(frozen=True, slots=True)
class Search:
    """The question as its candidates were found: the later stages score by this, not by the query as asked.

    A window or outlet that would have filtered every candidate away is a preference instead, so what
    filtered and what lifts is known only once the first stage has run.
    """

    query: SearchQuery
    text: str  # the words searched for: the question without its time words
    filters: SearchFilters  # what every candidate passed
    window: DateWindow | None  # read from the question, and time is on; candidates inside it are lifted
    outlets: tuple[str, ...]  # named in the question without filtering: their candidates are lifted


class Stage(Protocol):
    """One step after the first stage: candidates in, candidates out, best first."""

    @property
    def name(self) -> str: ...

    def run(self, search: Search, hits: list[Hit]) -> list[Hit]: ...


def ranked(hits: list[Hit]) -> list[Hit]:
    """Best first; ties by chunk id, so that an order never depends on the order stages saw hits in."""
    return sorted(hits, key=lambda h: (-h.score, h.chunk.id))
