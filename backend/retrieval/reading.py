"""How a question is read before retrieval: the time window and the outlets it names.

"What did The Verge report last week?" becomes the query "What did The Verge report?", a
window of the seven days before last, and the outlet "The Verge" when the archive has it.
The retriever decides whether these filter or boost; the reading is returned to the user so
they see how their question was understood.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from datetime import date

from backend.core.text import source_key
from backend.core.types import Reading, SearchFilters, SearchQuery
from backend.retrieval.timeframe import read_window

# Words around an outlet's name that make it a source rather than a subject:
# "according to Reuters", "in the BBC", "what did The Verge report", "Reuters reported".
_CUE_BEFORE = re.compile(
    r"(?:according\s+to|reported\s+by|in|from|by|did|does|do|per|at|on|told)\s+(?:the\s+)?$", re.IGNORECASE
)
_CUE_AFTER = re.compile(
    r"^\s*(?:'s\s+)?(?:report|reports|reported|reporting|say|says|said|wrote|writes|published|revealed|article)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[\w][\w.&'’-]*", re.UNICODE)
_MAX_NAME_WORDS = 5
# Domain endings dropped to find an outlet's name in its web address ("theweek.co.uk" -> "theweek").
_DOMAIN_PARTS = frozenset("www com org net co uk us au ca in news edu gov int io tv fm info biz".split())


def outlet_aliases(name: str) -> set[str]:
    """The keys an outlet may be named by: its name, its name without "The", its web address's name."""
    aliases = {source_key(name)}
    words = name.split()
    if len(words) > 1 and words[0].casefold() == "the":
        aliases.add(source_key(" ".join(words[1:])))
    if len(words) == 1 and "." in name:
        labels = [p for p in name.casefold().split(".") if p and p not in _DOMAIN_PARTS]
        if labels:
            aliases.add(source_key(labels[-1]))
    return {a for a in aliases if len(a) >= 2}


class OutletMatcher:
    def __init__(self, outlets: Iterable[str]) -> None:
        self._by_alias: dict[str, list[str]] = {}
        for name in outlets:
            for alias in outlet_aliases(name):
                self._by_alias.setdefault(alias, []).append(name)

    def find(self, question: str) -> tuple[tuple[str, ...], str]:
        """Outlets of the archive that the question names as a source, and the words naming them.

        A name counts only when capitalised (or written as a web address) and next to a cue
        word, so "in the week" is not The Week and "Apple said" is not an outlet unless the
        archive has one called Apple.
        """
        words = list(_WORD.finditer(question))
        for i in range(len(words)):
            for size in range(min(_MAX_NAME_WORDS, len(words) - i), 0, -1):
                span = words[i : i + size]
                first, last = span[0], span[-1]
                text = question[first.start() : last.end()].rstrip(".")
                names = self._by_alias.get(source_key(text))
                if not names or not (text[0].isupper() or "." in text):
                    continue
                before = question[: first.start()]
                after = question[last.end() :]
                if _CUE_BEFORE.search(before) or _CUE_AFTER.match(after):
                    return tuple(dict.fromkeys(names)), text
        return (), ""


class QueryReader:
    """Reads questions against the archive's outlets, refreshed every ``refresh_s`` seconds."""

    def __init__(self, outlets: Callable[[], Iterable[str]], refresh_s: float = 10.0) -> None:
        self._outlets = outlets
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._matcher: OutletMatcher | None = None
        self._loaded_at = 0.0

    def _current(self) -> OutletMatcher:
        with self._lock:
            now = time.monotonic()
            if self._matcher is None or now - self._loaded_at > self._refresh_s:
                self._matcher = OutletMatcher(self._outlets())
                self._loaded_at = now
            return self._matcher

    def read(self, question: str, as_of: date | None) -> Reading:
        window, rest = read_window(question, as_of) if as_of is not None else (None, question)
        sources, phrase = self._current().find(question)
        return Reading(window=window, sources=sources, source_phrase=phrase, text=rest if rest.strip() else question)

    def query(self, question: str, *, k: int, as_of: date | None, filters: SearchFilters | None = None) -> SearchQuery:
        return SearchQuery(
            text=question, k=k, as_of=as_of, filters=filters or SearchFilters(), reading=self.read(question, as_of)
        )
