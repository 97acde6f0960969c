"""The offline answerer: picks the retrieved sentences that best answer the question and cites them.

No language model is involved, so every word of the answer is a word of a source, and the
answer cannot drift from what the archive says.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from backend.core.protocols import Embedder
from backend.core.text import content_terms, quotable, split_sentences
from backend.core.types import Draft, Source, Turn
from backend.settings import AnswerSettings

# Weights of the signals a sentence is ranked by; semantic similarity leads, exact terms
# (names, places, numbers) decide between sentences that mean much the same, and a sentence
# holding the kind of thing asked for (a person for "who", a date for "when") gets a nudge.
_W_SEMANTIC, _W_LEXICAL, _W_RETRIEVAL, _W_TYPE = 0.55, 0.30, 0.15, 0.10

# News names people in apposition ("Mardan Salih, the commander of ...") or after a rank.
_PERSON = re.compile(
    r"(?:\b(?:General|Gen\.|Colonel|Col\.|Brigadier|Major|Captain|Governor|Mayor|President|Minister|"
    r"Chief|Coach|Curator|Dr\.|Mr\.|Ms\.|Mrs\.)\s+[A-Z][\w'’-]+)"
    r"|(?:\b(?!(?:On|In|At|By|The|Last|This|Next|Since|After|Before)\b)[A-Z][\w'’-]+"
    r"(?:\s+(?!(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b)[A-Z][\w'’-]+){1,2},"
    r"\s+(?:the|who|a|an|its|his|her)\b)"
    r"|(?:\b[A-Z][\w'’-]+\s+[A-Z][\w'’-]+\s+(?:said|says|told)\b)"
)
_WHEN = re.compile(
    r"\b(?:(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?\s+\d{1,2}|\d{4}|"
    r"Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|yesterday|today)\b"
)
_QUANTITY = re.compile(r"\d")
_WHERE = re.compile(r"\b(?:in|at|near|from)\s+[A-Z]")
_ANSWER_TYPES = (
    (re.compile(r"^\s*who(?:m|se)?\b", re.I), _PERSON),
    (re.compile(r"^\s*when\b|\bwhat (?:day|date|year|month)\b", re.I), _WHEN),
    (re.compile(r"^\s*how (?:much|many|long|far|old)\b|\bwhat (?:percentage|share|number)\b", re.I), _QUANTITY),
    (re.compile(r"^\s*where\b", re.I), _WHERE),
)
_REDUNDANT = 0.85  # cosine above which a second sentence repeats the first


@dataclass(slots=True)
class _Candidate:
    source: Source
    sentence: str
    terms: frozenset[str]
    semantic: float = 0.0
    lexical: float = 0.0
    score: float = 0.0


class ExtractiveAnswerer:
    def __init__(self, embedder: Embedder, settings: AnswerSettings) -> None:
        self._embedder = embedder
        self._settings = settings

    def generate(self, question: str, sources: Sequence[Source], history: Sequence[Turn] = ()) -> Draft:
        candidates = _shortlist(question, _candidates(sources[: self._settings.max_sources]), self._settings.shortlist)
        if not candidates:
            return Draft(text="")
        vectors = self._embedder.embed_documents([question, *(c.sentence for c in candidates)])
        query_vec, sentence_vecs = vectors[0], vectors[1:]
        _score(question, query_vec, candidates, sentence_vecs)
        ranked = sorted(range(len(candidates)), key=lambda i: candidates[i].score, reverse=True)
        best = candidates[ranked[0]]
        if best.semantic < self._settings.min_support:
            return Draft(text="")

        chosen: list[int] = []
        for i in ranked:
            if len(chosen) >= self._settings.max_sentences:
                break
            if candidates[i].score < 0.8 * best.score:
                break
            if any(_dot(sentence_vecs[i], sentence_vecs[j]) > _REDUNDANT for j in chosen):
                continue
            chosen.append(i)

        parts: list[str] = []
        snippets: dict[int, str] = {}
        lead = _person_lead(question, candidates[chosen[0]].sentence)
        if lead:
            parts.append(f"{lead} [{candidates[chosen[0]].source.n}].")
        for i in chosen:
            cand = candidates[i]
            parts.append(f"{cand.sentence} [{cand.source.n}]")
            snippets.setdefault(cand.source.n, cand.sentence)
        return Draft(text=" ".join(parts), snippets=snippets)


# "Mardan Salih, the Peshmerga commander of the sector," / "Imad Al-Maliki, who heads the command,"
_APPOSITION = re.compile(
    r"(?P<name>(?:[A-Z][\w'’-]+\s+){0,2}[A-Z][\w'’-]+(?:\s+(?:al-|Al-|bin|de|van|von)?\s*[A-Z][\w'’-]+){1,2})"
    r",\s+(?P<role>(?:the|a|an|who)\s+[^,.;]{3,80}?),"
)
_WHO = re.compile(r"^\s*who\b", re.I)


def _person_lead(question: str, sentence: str) -> str:
    """For a "who" question, the named person with their role, when the best sentence gives both
    mid-way ("... said Mardan Salih, the commander of the sector, ..."); empty when it already opens
    with them or does not give them."""
    if not _WHO.search(question):
        return ""
    match = _APPOSITION.search(sentence)
    if match is None or match.start() == 0:
        return ""
    return f"{match.group('name')}, {match.group('role')}"


def _candidates(sources: Sequence[Source]) -> list[_Candidate]:
    seen: set[str] = set()
    out: list[_Candidate] = []
    for source in sources:
        for hit in source.hits:
            for sentence in split_sentences(hit.chunk.text):
                if quotable(sentence, seen):
                    out.append(_Candidate(source, sentence, frozenset(content_terms(sentence))))
    return out


def _shortlist(question: str, cands: list[_Candidate], size: int) -> list[_Candidate]:
    """The sentences worth embedding: those sharing most question terms, best-ranked sources first.

    Embedding every sentence of ten chunks costs most of an answer's time; a sentence that shares
    no term with the question and comes from a low-ranked source rarely wins.
    """
    if len(cands) <= size:
        return cands
    q_terms = set(content_terms(question))
    ranked = sorted(range(len(cands)), key=lambda i: (-len(q_terms & cands[i].terms), cands[i].source.n, i))
    return [cands[i] for i in sorted(ranked[:size])]


def _score(question: str, query_vec: Sequence[float], cands: list[_Candidate], vecs: Sequence[Sequence[float]]) -> None:
    q_terms = set(content_terms(question))
    df = Counter(t for c in cands for t in c.terms if t in q_terms)
    n = len(cands)
    idf = {t: math.log(1 + n / (1 + df[t])) for t in q_terms}
    total_idf = sum(idf.values()) or 1.0
    top_retrieval = max(c.source.score for c in cands) or 1.0
    wanted = next((pattern for asks, pattern in _ANSWER_TYPES if asks.search(question)), None)
    for cand, vec in zip(cands, vecs, strict=True):
        cand.semantic = _dot(query_vec, vec)
        cand.lexical = sum(idf[t] for t in q_terms & cand.terms) / total_idf
        retrieval = cand.source.score / top_retrieval
        typed = 1.0 if wanted is not None and wanted.search(cand.sentence) else 0.0
        cand.score = (
            _W_SEMANTIC * cand.semantic + _W_LEXICAL * cand.lexical + _W_RETRIEVAL * retrieval + _W_TYPE * typed
        )


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return float(sum(x * y for x, y in zip(a, b, strict=True)))
