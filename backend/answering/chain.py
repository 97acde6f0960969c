"""The answer chain, composed with LangChain runnables.

question -> follow-up rewrite -> retrieval -> numbered sources -> generator -> verified citations.
The generator step is the seam for LLM providers: anything that is an ``AnswerGenerator``.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, TypedDict, TypeVar, Unpack

from langchain_core.runnables import Runnable, RunnableLambda

from backend.answering.deadline import question_clock
from backend.answering.rewrite import rewrite_followup
from backend.answering.sessions import new_session_id
from backend.core.protocols import AnswerGenerator, ConversationStore, Retriever, StreamingGenerator
from backend.core.text import split_sentences, tidy_spacing
from backend.core.types import (
    Answer,
    Citation,
    Draft,
    Hit,
    Reading,
    SearchFilters,
    SearchQuery,
    ShortAnswer,
    Source,
    Turn,
)
from backend.pools import InFlight
from backend.retrieval.reading import QueryReader

_T = TypeVar("_T")

NOT_FOUND = "The archive has no article that answers this question."

_MARKERS = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_SNIPPET_CHARS = 300


def number_sources(hits: Sequence[Hit], limit: int) -> list[Source]:
    """Group hits by article in rank order; each article is one numbered source."""
    grouped: dict[str, list[Hit]] = {}
    for hit in hits:
        if hit.chunk.article_id in grouped or len(grouped) < limit:
            grouped.setdefault(hit.chunk.article_id, []).append(hit)
    sources = []
    for n, group in enumerate(grouped.values(), start=1):
        first = group[0].chunk
        sources.append(
            Source(
                n=n,
                article_id=first.article_id,
                title=first.title,
                url=first.url,
                source=first.source,
                published_at=first.published_at,
                hits=tuple(group),
                also_in=tuple(dict.fromkeys(outlet for hit in group for outlet in hit.also_in)),
            )
        )
    return sources


def not_found(sources: Sequence[Source], span: tuple[int, str | None, str | None] | None) -> str:
    """The refusal: what the archive holds and the nearest it came, so the reader can rephrase."""
    parts = [NOT_FOUND]
    if span is not None and span[0]:
        count, first, last = span
        dates = f" published from {first[:10]} to {last[:10]}" if first and last else ""
        parts.append(f"It holds {count} article{'s' if count != 1 else ''}{dates}.")
    closest = [f'"{s.title}"{_where_when(s)}' for s in sources[:3] if s.title]
    if closest:
        parts.append(f"The closest it has: {'; '.join(closest)}.")
    return " ".join(parts)


def _where_when(source: Source) -> str:
    known = [x for x in (source.source, source.published_at and source.published_at.date().isoformat()) if x]
    return f" ({', '.join(known)})" if known else ""


def verify_citations(draft: Draft, sources: Sequence[Source]) -> tuple[str, tuple[Citation, ...]]:
    """Drop markers that point at no source and renumber the rest 1..m in order of first use.

    Afterwards every ``[n]`` in the text has exactly one citation, and every citation is a
    retrieved article.
    """
    by_n = {s.n: s for s in sources}
    order: list[int] = []

    def renumber(match: re.Match[str]) -> str:
        kept = []
        for raw in match.group(1).split(","):
            n = int(raw)
            if n not in by_n:
                continue
            if n not in order:
                order.append(n)
            kept.append(f"[{order.index(n) + 1}]")
        return "".join(dict.fromkeys(kept))

    text = tidy_spacing(_MARKERS.sub(renumber, draft.text))
    citations = []
    for new_n, old_n in enumerate(order, start=1):
        src = by_n[old_n]
        snippet = draft.snippets.get(old_n) or src.hits[0].chunk.text[:_SNIPPET_CHARS]
        citations.append(
            Citation(
                n=new_n,
                article_id=src.article_id,
                url=src.url,
                title=src.title,
                source=src.source,
                published_at=src.published_at,
                snippet=snippet,
                also_in=src.also_in,
            )
        )
    return text, tuple(citations)


def renumber_short(
    short: ShortAnswer | None, sources: Sequence[Source], citations: Sequence[Citation]
) -> ShortAnswer | None:
    """The short answer numbered as the verified answer cites its source; gone with its citation."""
    if short is None:
        return None
    article = next((s.article_id for s in sources if s.n == short.n), None)
    n = next((c.n for c in citations if c.article_id == article), None)
    return None if n is None else replace(short, n=n)


def read_own_words(
    reader: QueryReader, question: str, rewritten: str, history: Sequence[Turn], as_of: date | None
) -> Reading:
    """Time and outlets from the user's own words: this question, else the latest earlier question that
    names them. The rewritten query carries words of earlier answers too ("On Wednesday" from a quoted
    sentence), which may help retrieval but must never set the window or the outlet."""
    own = reader.read(question, as_of)
    for turn in reversed(history):
        if own.window and own.sources:
            break  # each earlier question is read only while something is still missing
        earlier = reader.read(turn.question, as_of)
        if not own.window and earlier.window:
            own = replace(own, window=earlier.window)
        if not own.sources and earlier.sources:
            own = replace(own, sources=earlier.sources, source_phrase=earlier.source_phrase)
    if rewritten == question:
        return own
    text = rewritten
    if own.window is not None and own.window.phrase:
        text = tidy_spacing(text.replace(own.window.phrase, " "))  # the window is applied, not searched for
    return replace(own, text=text or rewritten)


@dataclass(frozen=True, slots=True)
class ChainState:
    """One question on its way through the chain: what was asked, then what each step made of it."""

    question: str
    history: tuple[Turn, ...]
    as_of: date | None
    filters: SearchFilters
    k: int
    rewritten: str = ""  # the follow-up made standalone, what is retrieved with
    reading: Reading = field(default_factory=Reading)
    hits: tuple[Hit, ...] = ()
    sources: tuple[Source, ...] = ()  # the hits grouped by article and numbered, what the answer cites


class AskOptions(TypedDict, total=False):
    """What a question may come with, beside its text (keywords of ``AnswerChain.ask`` and ``stream``)."""

    session_id: str | None
    as_of: date | None
    filters: SearchFilters | None
    k: int | None
    history: Sequence[Turn] | None
    owner: str


class AnswerChain:
    def __init__(
        self,
        reader: QueryReader,
        retriever: Retriever,
        generator: AnswerGenerator,
        sessions: ConversationStore,
        *,
        k: int,
        max_sources: int,
        history_turns: int,
        archive_span: Callable[[], tuple[int, str | None, str | None]] | None = None,
        condense: Callable[[str, Sequence[Turn]], str] = rewrite_followup,
        in_flight: InFlight | None = None,
    ) -> None:
        """``in_flight``: counts the questions under way, which background work (saved questions) gives way to."""
        self._in_flight = in_flight
        self._archive_span = archive_span
        self._condense = condense
        self._reader = reader
        self._retriever = retriever
        self._generator = generator
        self._sessions = sessions
        self._k = k
        self._max_sources = max_sources
        self._history_turns = history_turns
        self._prepare = self._build()

    def _build(self) -> Runnable[ChainState, ChainState]:
        """Everything before the answer is written, which ``ask``, ``stream`` and ``sources_for`` share."""

        def rewrite(x: ChainState) -> ChainState:
            return replace(x, rewritten=self._condense(x.question, x.history))

        def read(x: ChainState) -> ChainState:
            return replace(x, reading=read_own_words(self._reader, x.question, x.rewritten, x.history, x.as_of))

        def retrieve(x: ChainState) -> ChainState:
            query = SearchQuery(text=x.rewritten, k=x.k, as_of=x.as_of, filters=x.filters, reading=x.reading)
            return replace(x, hits=tuple(self._retriever.retrieve(query)))

        def number(x: ChainState) -> ChainState:
            return replace(x, sources=tuple(number_sources(x.hits, self._max_sources)))

        steps = RunnableLambda(rewrite) | RunnableLambda(read) | RunnableLambda(retrieve) | RunnableLambda(number)
        return steps.with_config(run_name="byline_retrieve")

    def _state(
        self,
        question: str,
        session_id: str,
        as_of: date | None,
        filters: SearchFilters | None,
        k: int | None,
        history: Sequence[Turn] | None,
    ) -> ChainState:
        if history is None:
            history = self._sessions.history(session_id, self._history_turns)
        return ChainState(
            question=question,
            history=tuple(history)[-self._history_turns :] if self._history_turns else (),
            as_of=as_of,
            filters=filters or SearchFilters(),
            k=k or self._k,
        )

    def _answer(self, state: ChainState, draft: Draft, session_id: str, keep: bool, owner: str) -> Answer:
        """The draft's citations checked against the sources, the turn stored where the chain keeps it."""
        text, citations = verify_citations(draft, state.sources)
        if not text:
            text, citations = not_found(state.sources, self._archive_span() if self._archive_span else None), ()
        turn = Turn(state.question, state.rewritten, text, citations)
        if keep:
            self._sessions.append(session_id, turn, owner)
        return Answer(
            text=turn.answer,
            citations=turn.citations,
            session_id=session_id,
            rewritten_query=turn.rewritten_query,
            retrieved=tuple(s.article_id for s in state.sources),
            reading=state.reading,
            degraded=draft.degraded,
            short_answer=renumber_short(draft.short_answer, state.sources, citations),
        )

    def _run(self, question: str, options: AskOptions, pieces: bool) -> Iterator[StreamEvent]:
        """The one path of a question: read and retrieve, then ``Started``, the answer's text pieces when
        ``pieces`` (else the generator writes it whole), then the verified ``Answer``."""
        as_of, filters, k = options.get("as_of"), options.get("filters"), options.get("k")
        history, owner = options.get("history"), options.get("owner", "")
        session_id = self._session(options.get("session_id"), history, owner)
        # Each step runs in the question's own thread, as LangChain's ``assign`` ran them before the state was
        # typed: measured in the test process, on the thread that had ingested the archive the embedding model
        # took three to eight times as long, and a model's timeout was spent before it was asked.
        busy = self._in_flight.question() if self._in_flight is not None else nullcontext()
        with busy, ThreadPoolExecutor(max_workers=1, thread_name_prefix="byline-question") as worker:

            def step(run: Callable[..., _T], *args: Any) -> _T:
                # The question's clock is a context variable: the step runs in a copy of this context.
                return worker.submit(contextvars.copy_context().run, run, *args).result()

            # Every model call of this question shares one timeout. The clock is set around each step, not
            # around the generator: a generator's context is its caller's between steps.
            with question_clock() as started:
                state = step(self._prepare.invoke, self._state(question, session_id, as_of, filters, k, history))
            yield Started(session_id, state.rewritten, state.reading, state.sources)
            draft = Draft(text="")
            made = _draft_pieces(self._generator, state.rewritten, state.sources, state.history, pieces)
            while True:
                with question_clock(started):
                    piece = step(next, made, None)
                if piece is None:
                    break
                if isinstance(piece, Draft):
                    draft = piece
                else:
                    yield piece
        yield self._answer(state, draft, session_id, keep=history is None, owner=owner)

    def ask(self, question: str, **options: Unpack[AskOptions]) -> Answer:
        """``history``: the conversation so far when the caller keeps it (the OpenAI-compatible
        route); then nothing is stored and ``session_id`` is not used. ``owner``: the API key's
        digest; another key's ``session_id`` is NotFound."""
        *_, answer = self._run(question, options, pieces=False)
        assert isinstance(answer, Answer)
        return answer

    def stream(self, question: str, **options: Unpack[AskOptions]) -> Iterator[StreamEvent]:
        """The answer as it is made: how the question was read, the sources, text pieces, then the
        verified answer (whose text replaces the pieces: unsupported citations are gone from it)."""
        return self._run(question, options, pieces=True)

    def _session(self, session_id: str | None, history: Sequence[Turn] | None, owner: str) -> str:
        """The conversation's id: a new one, or the caller's own (its history is read next)."""
        if not session_id:
            return new_session_id()
        if history is None:
            self._sessions.check(session_id, owner)
        return session_id

    def sources_for(self, question: str, *, as_of: date | None = None) -> list[Source]:
        """The numbered sources a first question would be answered from (for evaluating the reader)."""
        state = self._prepare.invoke(self._state(question, new_session_id(), as_of, None, None, []))
        return list(state.sources)

    def rewrite(self, question: str, session_id: str) -> str:
        """The query a follow-up in this session would be retrieved with."""
        return self._condense(question, self._sessions.history(session_id, self._history_turns))


@dataclass(frozen=True, slots=True)
class Started:
    session_id: str
    rewritten_query: str
    reading: Reading
    sources: tuple[Source, ...]


StreamEvent = Started | str | Answer  # str: a piece of answer text


def _draft_pieces(
    generator: AnswerGenerator, question: str, sources: Sequence[Source], history: Sequence[Turn], pieces: bool
) -> Iterator[str | Draft]:
    """Text pieces as the generator makes them, then its draft; sentence by sentence for a
    generator that cannot stream (the extractive one). Without ``pieces``, the draft alone, written whole."""
    if not pieces:
        yield generator.generate(question, sources, history=history)
        return
    if isinstance(generator, StreamingGenerator):
        yield from generator.stream(question, sources, history=history)
        return
    draft = generator.generate(question, sources, history=history)
    for sentence in split_sentences(draft.text):
        yield sentence + " "
    yield draft
