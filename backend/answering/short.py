"""The default answerer: a short answer, the sentence that says it, and how far to trust it.

``Nordstrom [1]. "Nordstrom will close its downtown store ..." [1]``: the reader's best candidate
leads, then its evidence. Below ``answer.min_confidence`` the answer says it is not sure; when two
well-supported candidates from different outlets disagree it says reports differ and cites each.
A question that asks what someone said is answered with the quote. Without spaCy's model the
answerer quotes sentences as before (``ExtractiveAnswerer``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from backend.answering.extractive import ExtractiveAnswerer
from backend.answering.question import WHICH
from backend.answering.reader import Candidate, Evidence, Reader, ReaderResult
from backend.answering.rewrite import asked
from backend.core.text import normalize_for_hash, split_sentences, strip_markers
from backend.core.types import Draft, ShortAnswer, Source, Turn
from backend.settings import AnswerSettings

_SAYING = re.compile(r"\b(?:say|says|said|saying|tell|tells|told|claim|claimed|describe|described|warn|warned)\b", re.I)
_QUOTED = re.compile(r'"([^"]{12,})"')
# A rival reading is reported when it is at least this likely relative to the best one (a score margin:
# exp(rival - best) >= 0.5).
_RIVAL_MARGIN = 0.7


class ShortAnswerer:
    def __init__(self, reader: Reader | None, quotes: ExtractiveAnswerer, settings: AnswerSettings) -> None:
        self.reader = reader
        self._quotes = quotes
        self._settings = settings

    def generate(self, question: str, sources: Sequence[Source], history: Sequence[Turn] = ()) -> Draft:
        if self.reader is None:
            return self._quotes.generate(question, sources, history)
        result = self.reader.read(asked(question), sources, exclude=said_before(history))
        if asks_for_words(result):
            # What someone said may be the sentence an earlier answer quoted to name them: read it again.
            result = self.reader.read(asked(question), sources)
        if not result.evidence or max(e.semantic for e in result.evidence) < self._settings.min_support:
            return Draft(text="")  # the archive does not cover it: the same gate as the quoting answerer
        if asks_for_words(result):
            return _quote(result)
        if not result.candidates:
            best = result.evidence[0]
            return Draft(text=f'"{best.text}" [{best.source.n}]', snippets={best.source.n: best.text})
        return self._compose(result)

    def _compose(self, result: ReaderResult) -> Draft:
        best = result.candidates[0]
        sentence = result.evidence[best.evidence[0]]
        n = sentence.source.n
        short = ShortAnswer(best.text, n, round(result.confidence, 4), tuple(sorted(best.outlets)))
        snippets = {n: sentence.text}
        rival = _rival(result)
        if rival is not None:
            other = result.evidence[rival.evidence[0]]
            m = other.source.n
            snippets.setdefault(m, other.text)
            text = (
                f'Reports differ: {best.text} [{n}], {rival.text} [{m}]. "{sentence.text}" [{n}] "{other.text}" [{m}]'
            )
        elif result.confidence >= self._settings.min_confidence:
            text = f'{best.text} [{n}]. "{sentence.text}" [{n}]'
        else:
            # Unsure, it also gives the runner-up where that is of the very type asked for, with its sentence.
            runner = next((c for c in result.candidates[1:2] if c.features.get("type") == 1.0), None)
            if runner is None or result.evidence[runner.evidence[0]].text == sentence.text:
                text = f'Not sure: perhaps {best.text} [{n}]. The best evidence: "{sentence.text}" [{n}]'
            else:
                other = result.evidence[runner.evidence[0]]
                m = other.source.n
                snippets.setdefault(m, other.text)
                text = (
                    f"Not sure: perhaps {best.text} [{n}], or {runner.text} [{m}]. "
                    f'The best evidence: "{sentence.text}" [{n}] "{other.text}" [{m}]'
                )
        return Draft(text=text, snippets=snippets, short_answer=short, hints=_hints(result))


def asks_for_words(result: ReaderResult) -> bool:
    """ "What did he say about security?": the answer is a quote, not a name."""
    q = result.question
    return q.kind == WHICH and q.focus is None and bool(_SAYING.search(q.text))


_CONTINUES = re.compile(r"^(?:He|She|They)\s+(?:also\s+)?(?:added|said|says|told|warned|noted|stressed)\b")


def _quote(result: ReaderResult) -> Draft:
    """The sentence in which the person asked about says something on the subject asked, with the next
    sentence when it goes on with their words ("He added that ...")."""
    speakers = [n for n in result.question.named if " " in n] or list(result.question.named)

    def rank(ev: Evidence) -> float:
        folded = ev.text.casefold()
        says = 0.2 if _SAYING.search(ev.text) else 0.0
        named = 0.2 if any(s in folded for s in speakers) else 0.0
        return ev.semantic + says + named

    best = max(result.evidence, key=rank)
    n = best.source.n
    text = f'"{best.text}" [{n}]'
    if _CONTINUES.match(best.following):
        text += f' "{best.following}" [{n}]'
    return Draft(text=text, snippets={n: best.text})


def _hints(result: ReaderResult, count: int = 3) -> tuple[str, ...]:
    lines = []
    for cand in result.candidates[:count]:
        ev = result.evidence[cand.evidence[0]]
        lines.append(f'{cand.text} [{ev.source.n}]: "{ev.text}"')
    return tuple(lines)


def said_before(history: Sequence[Turn]) -> frozenset[str]:
    """The sentences earlier answers quoted: a follow-up answered with the same words answered nothing."""
    out: set[str] = set()
    for turn in history:
        out.update(normalize_for_hash(c.snippet) for c in turn.citations)
        text = strip_markers(turn.answer)
        for quoted in _QUOTED.findall(text):
            out.add(normalize_for_hash(quoted))
        out.update(normalize_for_hash(s.strip('"')) for s in split_sentences(text))
    return frozenset(out)


def _rival(result: ReaderResult) -> Candidate | None:
    """A second answer that other outlets give about as confidently, where none of them names the first."""
    best = result.candidates[0]
    if not best.outlets:
        return None
    for cand in result.candidates[1:4]:
        if cand.score < best.score - _RIVAL_MARGIN:
            return None
        if cand.outlets & best.outlets or cand.key in best.key or best.key in cand.key:
            continue
        if cand.features.get("type") != 1.0 or best.features.get("type") != 1.0:
            continue  # only answers of the very type asked for can contradict each other
        return cand
    return None
