"""Answers written by a language model from numbered sources, checked against them.

Three guards around the model:
- The extractive answerer runs first as a gate: when no retrieved sentence supports the question
  well enough (its calibrated threshold), the model is not asked at all, so an off-archive question
  is never answered from the model's own knowledge.
- A model that fails or does not answer in time gives way to the extractive answer, marked
  ``degraded`` with the reason; the caller never sees an error for it.
- Each ``[n]`` the model writes is kept only where its sentence shares enough words with source n
  (never with a sentence addressed to an AI), and a sentence left without a citation is dropped;
  the best-matching sentence of the source becomes the citation's snippet.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace

from langchain_core.language_models import BaseChatModel

from backend.answering.deadline import time_left
from backend.answering.prompt import messages
from backend.core.protocols import AnswerGenerator
from backend.core.text import content_terms, looks_like_instruction, split_sentences, strip_markers, tidy_spacing
from backend.core.types import Draft, Source, Turn

_MARKER = re.compile(r"\[(\d+)\]")
# Markers written after the full stop ("... safer. [1]") belong to the sentence before it; split as they
# stand, they would be a sentence of their own and the cited one would be dropped as uncited.
_TRAILING_MARKERS = re.compile(r"\s*([.!?。！？]+)\s*((?:\[\d+\][\s,]*)+)(?=\s|$)")
MIN_CITATION_SUPPORT = 0.25  # share of a cited sentence's words that must appear in one sentence of its source


class LLMAnswerer:
    def __init__(self, chat: BaseChatModel, gate: AnswerGenerator, timeout_s: float, *, pool: Executor) -> None:
        """``pool``: threads the model is called in, so that waiting for it can end at the deadline; the
        services own them (``backend.pools``)."""
        self._chat = chat
        self._gate = gate
        self._timeout_s = timeout_s
        self._pool = pool

    def generate(self, question: str, sources: Sequence[Source], history: Sequence[Turn] = ()) -> Draft:
        fallback = self._gate.generate(question, sources)
        if not fallback.text:
            return fallback  # nothing in the archive supports an answer: the model is not asked
        left = time_left(self._timeout_s)  # a follow-up's rewrite may have used some of the budget
        if left <= 0:
            return replace(fallback, degraded=self._late)
        future = self._pool.submit(self._chat.invoke, messages(question, sources, _pairs(history), fallback.hints))
        try:
            reply = future.result(timeout=left)
        except FutureTimeout:
            return replace(fallback, degraded=self._late)
        except Exception as exc:  # a provider down or misconfigured must not fail the question
            return replace(fallback, degraded=f"the language model failed: {type(exc).__name__}: {exc}"[:300])
        return _final(str(reply.content), fallback, sources)

    def stream(self, question: str, sources: Sequence[Source], history: Sequence[Turn] = ()) -> Iterator[str | Draft]:
        fallback = self._gate.generate(question, sources)
        if not fallback.text:
            yield fallback
            return
        ends = time.monotonic() + time_left(self._timeout_s)
        # The model's stream is read in a worker so that waiting for its next token can end at the deadline.
        tokens: queue.Queue[str | Exception | None] = queue.Queue()
        abandoned = threading.Event()

        def pump() -> None:
            try:
                for chunk in self._chat.stream(messages(question, sources, _pairs(history), fallback.hints)):
                    if abandoned.is_set():
                        return  # leaving the loop closes the model's stream
                    tokens.put(str(chunk.content))
            except Exception as exc:
                tokens.put(exc)
            finally:
                tokens.put(None)

        self._pool.submit(pump)
        parts: list[str] = []
        while True:
            try:
                item = tokens.get(timeout=max(0.0, ends - time.monotonic()))
            except queue.Empty:
                abandoned.set()
                yield replace(fallback, degraded=self._late)
                return
            if item is None:
                break
            if isinstance(item, Exception):  # as in generate: the extractive answer, marked
                yield replace(fallback, degraded=f"the language model failed: {type(item).__name__}: {item}"[:300])
                return
            if item:
                parts.append(item)
                yield item
        yield _final("".join(parts), fallback, sources)

    @property
    def _late(self) -> str:
        return f"the language model did not answer within {self._timeout_s:g} s"


def _pairs(history: Sequence[Turn]) -> list[tuple[str, str]]:
    return [(t.question, t.answer) for t in history]


def _final(text: str, fallback: Draft, sources: Sequence[Source]) -> Draft:
    text = text.strip()
    if not text:
        return replace(fallback, degraded="the language model returned an empty answer")
    checked, snippets = check_citations(text, sources)
    if not snippets:
        return replace(fallback, degraded="the language model's answer cited no source that supports it")
    # The reader's short answer stays when the model's answer gives it, cited to the same source.
    short = fallback.short_answer
    keep = short is not None and short.text.casefold() in checked.casefold() and short.n in snippets
    return Draft(text=checked, snippets=snippets, short_answer=short if keep else None)


def _markers_before_stop(match: re.Match[str]) -> str:
    markers = "".join(f"[{n}]" for n in _MARKER.findall(match.group(2)))
    return f" {markers}{match.group(1)}"


def check_citations(text: str, sources: Sequence[Source]) -> tuple[str, dict[int, str]]:
    """Drop each ``[n]`` whose sentence source n does not support, then every sentence left without a
    citation (the prompt asks for one on every sentence); snippets for the citations kept."""
    by_n = {s.n: s for s in sources}
    sentences_of = {
        s.n: [x for hit in s.hits for x in split_sentences(hit.chunk.text) if not looks_like_instruction(x)]
        for s in sources
    }
    snippets: dict[int, str] = {}
    kept_sentences = []
    text = _TRAILING_MARKERS.sub(_markers_before_stop, text)
    for sentence in split_sentences(text):
        terms = set(content_terms(strip_markers(sentence)))

        def verdict(match: re.Match[str], terms: set[str] = terms) -> str:
            n = int(match.group(1))
            if n not in by_n or not terms:
                return ""
            best = max(sentences_of[n], key=lambda s: len(terms & set(content_terms(s))), default="")
            support = len(terms & set(content_terms(best))) / len(terms)
            if support < MIN_CITATION_SUPPORT:
                return ""
            snippets.setdefault(n, best)
            return match.group(0)

        checked = _MARKER.sub(verdict, sentence)
        if _MARKER.search(checked):
            kept_sentences.append(checked)  # a sentence left without a supported citation is dropped
    return tidy_spacing(" ".join(kept_sentences)), snippets
