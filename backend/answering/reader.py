"""The reader: the few words of the retrieved articles that answer the question.

Candidates are the names, dates, quantities and noun phrases of the sentences that best match the
question, read by spaCy. Each is scored on features a newsroom researcher would weigh: is it the kind
of thing asked for, does it stand near the question's words, how many articles and outlets say it,
how well ranked is its source, how close is its sentence in meaning, and does its article's headline
and lead supply what the sentence leaves implicit ("the sector", "the company"). A linear model over
those features, fitted on a dev set (``eval/reader_fit.py``), gives each candidate a probability
of being the answer: that probability is the answer's confidence.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from backend.answering.question import (
    ANY,
    DATE,
    MONEY,
    NUMBER,
    ORG,
    PERCENT,
    PERSON,
    PLACE,
    THING,
    QuestionAnalysis,
    analyze_doc,
)
from backend.core.protocols import Embedder
from backend.core.text import content_terms, quotable, split_sentences
from backend.core.types import Source

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span

# spaCy's entity labels for each expected answer type.
_LABELS: dict[str, frozenset[str]] = {
    PERSON: frozenset({"PERSON"}),
    ORG: frozenset({"ORG"}),
    PLACE: frozenset({"GPE", "LOC", "FAC"}),
    DATE: frozenset({"DATE"}),
    NUMBER: frozenset({"CARDINAL", "QUANTITY", "MONEY", "PERCENT", "TIME"}),
    MONEY: frozenset({"MONEY"}),
    PERCENT: frozenset({"PERCENT"}),
}
# Labels close enough to count half: a "who" answered by an organisation, a "where" by a nationality.
_NEAR: dict[str, frozenset[str]] = {
    PERSON: frozenset({"ORG"}),
    ORG: frozenset({"PERSON", "PRODUCT", "GPE", "WORK_OF_ART"}),
    PLACE: frozenset({"ORG", "NORP"}),
    DATE: frozenset({"TIME", "CARDINAL"}),
    NUMBER: frozenset({"DATE"}),
    MONEY: frozenset({"CARDINAL"}),
    PERCENT: frozenset({"CARDINAL"}),
}
_NUMERIC = frozenset({"DATE", "TIME", "CARDINAL", "QUANTITY", "MONEY", "PERCENT", "ORDINAL"})
_DETERMINERS = re.compile(r"^(?:the|a|an|this|that|these|those|its|his|her|their|our)\s+", re.I)
_EDGES = " \t\n.,;:!?'\"“”‘’()[]"

# The features, in the order of WEIGHTS. Fitted by `byline eval fit-reader` (eval/reader_fit.py) on the
# rtqa2023 dev set, 2026-11-30: see docs/answers.md.
FEATURES = (
    "type",  # 1: an entity of the label asked for (a PERSON for "who"); 0.5: a label close to it (an ORG)
    "focus head",  # a noun phrase headed by the question's focus ("the retailer" for "which retailer")
    "phrase",  # another noun phrase, for a question whose answer has no entity label
    "other name",  # a named entity, for a question whose answer has no entity label
    "number",  # a date or quantity, for a question whose answer has no entity label
    "focus",  # the question's focus noun stands beside it ("the department store Nordstrom")
    "proximity",  # closeness to the question's words in its sentence
    "semantic",  # cosine of its sentence to the question
    "lexical",  # share of the question's terms (idf-weighted) in its sentence, its headline and lead
    "context",  # share of the question's terms in its article's headline and lead
    "articles",  # log of the distinct retrieved articles that name it
    "rank",  # 1 / rank of the best source naming it
    "mentions",  # log of its mentions in the read sentences
    "echo",  # share of its words that the question already uses
)
WEIGHTS = (0.69, 0.26, -0.13, 0.61, -1.30, 0.51, 1.16, 1.44, 0.42, 1.26, 0.42, 0.89, 1.24, 0.02)
BIAS = -8.50
# The confidence that the best candidate is right, from its share of the candidates' softmax (as log-odds)
# and its score: a Platt scaling fitted on the same dev set. (share weight, score weight, bias)
CALIBRATION = (0.297, 0.798, 0.323)


@dataclass(slots=True)
class Evidence:
    """One sentence the reader read, from a numbered source."""

    source: Source
    text: str
    terms: frozenset[str]
    lexical: float = 0.0
    semantic: float = 0.0
    following: str = ""  # the article's next sentence: "He added that ..." continues a quote


@dataclass(slots=True)
class Candidate:
    text: str
    key: str
    features: dict[str, float] = field(default_factory=dict)
    evidence: list[int] = field(default_factory=list)  # indices into Reading.evidence, best first
    sources: set[int] = field(default_factory=set)  # Source.n of the sources that name it
    outlets: set[str] = field(default_factory=set)
    score: float = 0.0
    probability: float = 0.0


@dataclass(slots=True)
class ReaderResult:
    question: QuestionAnalysis
    evidence: list[Evidence]
    candidates: list[Candidate]  # best first
    confidence: float = 0.0  # calibrated: how often a best candidate read like this one is right


def calibrated(scores: Sequence[float], calibration: Sequence[float] = CALIBRATION) -> float:
    """The confidence that the best of these candidate scores is the answer."""
    if not scores:
        return 0.0
    top = max(scores)
    share = 1.0 / sum(math.exp(s - top) for s in scores)
    odds = math.log(max(share, 1e-9) / max(1.0 - share, 1e-9))
    a, b, bias = calibration
    return logistic(a * odds + b * top + bias)


def logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, x))))


class Reader:
    def __init__(
        self,
        nlp: Language,
        embedder: Embedder,
        article_text: Callable[[str], str] | None = None,
        *,
        max_sources: int = 5,
        shortlist: int = 16,
        read: int = 10,
        weights: Sequence[float] = WEIGHTS,
        bias: float = BIAS,
    ) -> None:
        self._nlp = nlp
        self._embedder = embedder
        self._article_text = article_text
        self._max_sources = max_sources
        self._shortlist = shortlist
        self._read = read
        self.weights = tuple(weights)
        self.bias = bias

    def read(self, question: str, sources: Sequence[Source], exclude: frozenset[str] = frozenset()) -> ReaderResult:
        """``exclude``: sentences (normalised) already given in this conversation, never quoted again."""
        analysis = analyze_doc(self._nlp(question))
        sources = list(sources[: self._max_sources])
        texts = {s.n: self._text(s) for s in sources}
        evidence, contexts = self.select(question, analysis, sources, texts, exclude)
        if not evidence:
            return ReaderResult(analysis, [], [])
        read = evidence[: self._read]
        q_terms = set(analysis.terms)
        folded = {n: t.casefold() for n, t in texts.items()}
        # The outlets that carried each source: its own and those of copies collapsed into it (wire stories).
        outlet_of = {s.n: {o for o in (s.source, *s.also_in) if o} for s in sources}
        candidates = _merge_short_forms(_candidates(analysis, read, self._nlp, q_terms))
        for cand in candidates.values():
            cand.sources = {n for n, text in folded.items() if _contains_word(text, cand.key)}
            cand.sources.update(read[i].source.n for i in cand.evidence)
            cand.outlets = set().union(*(outlet_of[n] for n in cand.sources))
            best = read[cand.evidence[0]]
            cand.features["semantic"] = max(read[i].semantic for i in cand.evidence)
            cand.features["lexical"] = max(read[i].lexical for i in cand.evidence)
            cand.features["context"] = contexts[best.source.n]
            cand.features["articles"] = math.log1p(len(cand.sources))
            cand.features["rank"] = 1.0 / min(cand.sources)
            cand.features["mentions"] = math.log1p(len(cand.evidence))
            cand.score = self.bias + sum(
                w * cand.features.get(f, 0.0) for f, w in zip(FEATURES, self.weights, strict=True)
            )
            cand.probability = logistic(cand.score)
        ranked = sorted(candidates.values(), key=lambda c: -c.score)
        return ReaderResult(analysis, read, ranked, calibrated([c.score for c in ranked]))

    def select(
        self,
        question: str,
        analysis: QuestionAnalysis,
        sources: Sequence[Source],
        texts: dict[int, str],
        exclude: frozenset[str] = frozenset(),
    ) -> tuple[list[Evidence], dict[int, float]]:
        """The sentences worth reading, best first, and each source's headline-and-lead coverage.

        Words first (cheap, over every sentence of the articles), then meaning, for a shortlist only:
        embedding every sentence of five articles would cost most of a second.
        """
        evidence = _evidence(sources, texts, exclude)
        q_terms = set(analysis.terms)
        idf = _idf(q_terms, evidence)
        leads = {s.n: set(content_terms(_lead(s, texts[s.n]))) & q_terms for s in sources}
        contexts = {n: _coverage(q_terms, terms, idf) for n, terms in leads.items()}
        if not evidence:
            return [], contexts
        for ev in evidence:
            terms = set(ev.terms)
            if _refers_back(ev.text, q_terms):
                terms |= leads[ev.source.n]  # "the sector" is the one the headline names
            ev.lexical = 0.7 * _coverage(q_terms, terms, idf) + 0.3 * contexts[ev.source.n]
        shortlist = sorted(range(len(evidence)), key=lambda i: (-evidence[i].lexical, evidence[i].source.n, i))
        evidence = [evidence[i] for i in sorted(shortlist[: self._shortlist])]
        vectors = self._embedder.embed_documents([question, *(e.text for e in evidence)])
        for ev, vec in zip(evidence, vectors[1:], strict=True):
            ev.semantic = _dot(vectors[0], vec)
        return sorted(evidence, key=lambda e: -(e.semantic + e.lexical)), contexts

    def _text(self, source: Source) -> str:
        """The whole article where the store can give it: the answer is often a paragraph away from the
        passage that matched (the lead names the sector, the quote names the commander)."""
        if self._article_text is not None:
            try:
                text = self._article_text(source.article_id)
            except Exception:
                text = ""
            if text:
                return text
        return " ".join(hit.chunk.text for hit in source.hits)


_DEFINITE = re.compile(r"\b(?:the|this|that)\s+([A-Za-z][\w-]+)", re.I)


def _refers_back(sentence: str, q_terms: set[str]) -> bool:
    """ "the commander of the sector": a definite noun the question also uses refers to the story's own
    (named in the headline and lead), so the sentence is about what the question names."""
    return any(t in q_terms for m in _DEFINITE.finditer(sentence) for t in content_terms(m.group(1)))


def _lead(source: Source, text: str) -> str:
    sentences = split_sentences(text)
    return " ".join([source.title, *sentences[:2]])


def _evidence(sources: Sequence[Source], texts: dict[int, str], exclude: frozenset[str]) -> list[Evidence]:
    seen: set[str] = set(exclude)
    out: list[Evidence] = []
    for source in sources:
        sentences = split_sentences(texts[source.n])
        for at, sentence in enumerate(sentences):
            if not quotable(sentence, seen):
                continue
            following = sentences[at + 1] if at + 1 < len(sentences) else ""
            out.append(Evidence(source, sentence, frozenset(content_terms(sentence)), following=following))
    return out


def _idf(q_terms: set[str], evidence: Sequence[Evidence]) -> dict[str, float]:
    df = Counter(t for e in evidence for t in e.terms if t in q_terms)
    n = len(evidence)
    return {t: math.log(1 + n / (1 + df[t])) for t in q_terms}


def _coverage(q_terms: set[str], terms: set[str], idf: dict[str, float]) -> float:
    total = sum(idf.values())
    return sum(idf[t] for t in q_terms & terms) / total if total else 0.0


def _contains_word(text: str, key: str) -> bool:
    at = text.find(key)
    while at >= 0:
        end = at + len(key)
        if (at == 0 or not text[at - 1].isalnum()) and (end == len(text) or not text[end].isalnum()):
            return True
        at = text.find(key, at + 1)
    return False


def _clean(text: str) -> str:
    text = text.strip(_EDGES)
    text = re.sub(r"['’]s$", "", text)
    return _DETERMINERS.sub("", text).strip(_EDGES)


def _candidates(
    analysis: QuestionAnalysis, read: Sequence[Evidence], nlp: Language, q_terms: set[str]
) -> dict[str, Candidate]:
    wanted = _LABELS.get(analysis.answer_type)
    near = _NEAR.get(analysis.answer_type, frozenset())
    focus = analysis.focus.split()[-1] if analysis.focus else None
    named = {n.casefold() for n in analysis.named}
    out: dict[str, Candidate] = {}
    for index, doc in enumerate(nlp.pipe(e.text for e in read)):
        q_positions = [t.i for t in doc if t.lemma_.lower() in q_terms or _stemmed(t.lower_) in q_terms]
        spans: list[tuple[Span, str]] = [(_whole_name(e), e.label_) for e in doc.ents if e.label_ != "ORDINAL"]
        spans += [(t, "WORK_OF_ART") for t in _quoted_titles(doc)]
        if analysis.answer_type in (THING, ANY) or wanted is None:
            spans += [(nc, "NP") for nc in doc.noun_chunks if not any(t.ent_type_ for t in nc)]
        for span, label in spans:
            text = _clean(span.text)
            key = text.casefold()
            if len(key) < 2 or key in named or not any(ch.isalnum() for ch in key):
                continue
            words = content_terms(text)
            if not words:
                continue
            echo = sum(w in q_terms for w in words) / len(words)
            if echo == 1.0:
                continue  # the question already says it
            if label == "NP" and span.root.pos_ == "PRON":
                continue
            fit = _fit(label, span, wanted, near, focus)
            if not fit or _not_a_quantity(span, label, analysis.answer_type):
                continue
            cand = out.setdefault(key, Candidate(text, key))
            name, value = ("type", 0.5) if fit == "near type" else (fit, 1.0)
            features = {
                name: value,
                "focus": _focus_near(span, focus),
                "proximity": _proximity(span, q_positions),
                "echo": echo,
            }
            if not cand.evidence or _local(features) > _local(cand.features):
                cand.features.update(features)
                cand.text = text
            if index not in cand.evidence:
                cand.evidence.append(index)
    return out


# News quotes the titles of shows, films, books and slogans, in straight or curly quotes.
_QUOTED = re.compile(r"[“‘\"]([A-Z][^”’\"]{1,60})[”’\"]")


def _quoted_titles(doc: Doc) -> list[Span]:
    out = []
    for match in _QUOTED.finditer(doc.text):
        words = match.group(1).split()
        if not 1 <= len(words) <= 8 or match.group(1).rstrip()[-1:] in ".,!?":
            continue  # a quoted sentence, not a title
        span = doc.char_span(match.start(1), match.end(1), alignment_mode="expand")
        if span is not None:
            out.append(span)
    return out


_NUMBER_WORD = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
    r"hundred|thousand|million|billion|trillion|dozen|half|quarter)\b",
    re.I,
)


def _not_a_quantity(span: Span, label: str, answer_type: str) -> bool:
    """A number that is part of a name ("Kurdistan 24", "Channel 4"), or, for a question that asks how
    much, a date without a number in it ("Wednesday"): neither answers a question about a quantity."""
    bare = label in _NUMERIC and len(span) == 1 and span[0].like_num
    if bare and span.start > 0 and span.doc[span.start - 1].pos_ == "PROPN":
        return True
    return answer_type in (NUMBER, MONEY, PERCENT) and not _NUMBER_WORD.search(span.text)


def _whole_name(span: Span) -> Span:
    """The entity with the proper nouns compounded onto it: spaCy may tag "Ardenvale" and "Rovers" apart."""
    doc, start = span.doc, span.start
    while start > 0 and doc[start - 1].pos_ == "PROPN" and doc[start - 1].dep_ == "compound":
        if not span.start <= doc[start - 1].head.i < span.end:
            break
        start -= 1
    return doc[start : span.end] if start < span.start else span


def _merge_short_forms(candidates: dict[str, Candidate]) -> dict[str, Candidate]:
    """ "Rovers" into "Ardenvale Rovers", "Biden" into "Joe Biden": news names in full once, then short.
    The full form keeps the mentions of both, so the short form cannot win on repetition alone."""
    keys = sorted(candidates, key=len, reverse=True)
    for short in keys[::-1]:
        full = next((k for k in keys if len(k) > len(short) and k in candidates and _contains_word(k, short)), None)
        if full is None:
            continue
        into, gone = candidates[full], candidates.pop(short)
        into.evidence.extend(i for i in gone.evidence if i not in into.evidence)
        for name, value in gone.features.items():
            if name in ("focus", "proximity"):
                into.features[name] = max(into.features.get(name, 0.0), value)
    return candidates


def _local(features: dict[str, float]) -> float:
    return features.get("focus", 0.0) + features.get("proximity", 0.0)


def _stemmed(word: str) -> str:
    terms = content_terms(word)
    return terms[0] if terms else ""


def _fit(label: str, span: Span, wanted: frozenset[str] | None, near: frozenset[str], focus: str | None) -> str:
    """Which type feature a candidate sets, "" when it cannot be the answer."""
    headed = label == "NP" and focus is not None and span.root.lemma_.lower() == focus
    if wanted is not None:
        if label in wanted:
            return "type"
        if label in near:
            return "near type"
        return "focus head" if headed else ""
    if label == "NP":
        return "focus head" if headed else "phrase"
    return "number" if label in _NUMERIC else "other name"


def _focus_near(span: Span, focus: str | None) -> float:
    """The focus noun within three words of the candidate: "the retailer Nordstrom", "Peeps candy"."""
    if focus is None:
        return 0.0
    tokens = span.doc
    lo, hi = max(0, span.start - 4), min(len(tokens), span.end + 4)
    for token in tokens[lo:hi]:
        if token.i in range(span.start, span.end) and token.i != span.end - 1:
            continue
        if token.lemma_.lower() == focus or token.lower_ == focus:
            return 1.0 if token.i not in range(span.start, span.end) else 0.5
    return 0.0


def _proximity(span: Span, q_positions: Sequence[int]) -> float:
    outside = [p for p in q_positions if p < span.start or p >= span.end]
    if not outside:
        return 0.0
    distance = min(span.start - p if p < span.start else p - span.end + 1 for p in outside)
    return 1.0 / (1.0 + 0.25 * max(0, distance - 1))


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return float(sum(x * y for x, y in zip(a, b, strict=True)))
