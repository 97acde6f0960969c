"""A generator with a short answer behind the real chain, for the API and UI tests of ``short_answer``.

The extractive answerer decides for itself whether it has a short answer and how sure it is; these
tests need both cases on demand, so the generator is a fake, wired into the same ``AnswerChain`` as
``build_services`` wires the real one (same reader, retriever and conversation store).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from backend.answering.chain import AnswerChain
from backend.core.types import Draft, ShortAnswer, Source, Turn
from backend.services import Services

OUTLETS = ("Outlet A", "Outlet B")


class ShortAnswerer:
    """A real ``AnswerGenerator`` whose short answer ``words`` comes from source ``cite``.

    Its text cites source 1 before source ``cite``, so the verified answer renumbers them by first use:
    source ``cite`` becomes citation 2, and the short answer's ``n`` has to follow it.
    """

    def __init__(
        self, words: str = "Nordstrom", confidence: float = 0.8, outlets: tuple[str, ...] = OUTLETS, cite: int = 3
    ) -> None:
        self.words, self.confidence, self.outlets, self.cite = words, confidence, outlets, cite
        self.seen: list[list[Source]] = []

    def generate(self, question: str, sources: Sequence[Source], history: Sequence[Turn] = ()) -> Draft:
        self.seen.append(list(sources))
        short = ShortAnswer(self.words, self.cite, self.confidence, self.outlets)
        if len(sources) < self.cite:  # no text, and a short answer without its source: the chain drops it
            return Draft(text="", short_answer=short)
        return Draft(text=f"The archive has this [1]. The answer is {self.words} [{self.cite}].", short_answer=short)


def answering_with(services: Services, generator: ShortAnswerer) -> Services:
    """``services`` whose questions are answered by ``generator``, otherwise as built from the settings."""
    settings = services.settings
    chain = AnswerChain(
        services.reader,
        services.retriever,
        generator,
        services.sessions,
        k=settings.retrieval.k,
        max_sources=settings.answer.max_sources,
        history_turns=settings.sessions.history_turns,
        archive_span=services.registry.span,
    )
    return replace(services, answers=chain)
