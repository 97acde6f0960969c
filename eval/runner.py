"""Runs a question set through the backend: retrieval with several retrievers, or whole answers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from backend.answering.question import OTHER, analyze_question
from backend.answering.sessions import new_session_id
from backend.core.filters import matches
from backend.core.protocols import Retriever
from backend.core.types import Chunk, Hit, SearchQuery, ShortAnswer
from backend.services import Services, build_retriever
from eval.metrics import (
    Ranked,
    answer_correct,
    citation_support,
    citation_validity,
    first_per_article,
    hit_at,
    mrr_at,
    ndcg_at,
    recall_at,
    short_answer_correct,
)
from eval.questions import FRESH_DAYS, Question

if TYPE_CHECKING:
    from spacy.language import Language

CURVE_K = 10
Progress = Callable[[Iterable[Question]], Iterable[Question]]


def question_kind(as_of: date | None, published: Iterable[datetime | None], fresh_days: int = FRESH_DAYS) -> str:
    """Where a judged question's answer sits in the archive, relative to when it is asked.

    "fresh": an article published in the ``fresh_days`` before ``as_of`` holds it: most likely the news
    the question is about. "background": only older articles do. Relevance is judged by the answer
    string, so an old article that names "Libya" in passing is relevant to a question about this
    week's floods there: such questions measure luck as much as retrieval, and the report keeps them
    apart. "undated": no ``as_of``, or no dated article holds the answer.
    """
    dated = [p for p in published if p is not None]
    if as_of is None or not dated:
        return "undated"
    freshest = max(p.date() for p in dated)
    return "fresh" if (as_of - freshest).days <= fresh_days else "background"


def _contains_any(text: str, needles: Sequence[str]) -> bool:
    folded = text.casefold()
    return any(n.casefold() in folded for n in needles)


TOPICAL = "topical"
ANSWER_STRING = "answer string"
JUDGEMENTS = (TOPICAL, ANSWER_STRING)


def judgements(question: Question) -> tuple[str, ...]:
    """The sets a question is judged in: "topical" by its ``relevant`` articles (labels naming the
    articles about it), "answer string" by the passages holding one of its ``answers``. A question
    with both is judged both ways; one with neither stays in the answer-string set, unjudged."""
    sets: tuple[str, ...] = (TOPICAL,) if question.relevant else ()
    if question.answers is not None or not question.relevant:
        sets += (ANSWER_STRING,)
    return sets


class Judge:
    """Which passages and articles of the archive are relevant to a question, as of its date."""

    def __init__(self, services: Services) -> None:
        self.chunks: list[Chunk] = list(services.store.iter_chunks())
        self.by_id: dict[str, Chunk] = {c.id: c for c in self.chunks}
        self.url_to_article: dict[str, str] = {c.url: c.article_id for c in self.chunks if c.url}
        copies = services.registry.copies(sorted({c.article_id for c in self.chunks}))
        for article_id, found in copies.items():
            for copy in found:
                self.url_to_article.setdefault(copy.copy_id, article_id)
                if copy.url:
                    self.url_to_article.setdefault(copy.url, article_id)

    def _cut(self, question: Question) -> SearchQuery:
        """The question's date cut as a query for ``matches``, the filters' reference."""
        return SearchQuery(question.question, as_of=question.as_of)

    def visible(self, question: Question) -> list[Chunk]:
        if question.as_of is None:
            return self.chunks
        cut = self._cut(question)
        return [c for c in self.chunks if matches(c.published_at, c.source, cut)]

    def relevant(self, question: Question, by: str | None = None) -> tuple[set[str], set[str]]:
        """Relevant chunk ids and article ids among what the question may see."""
        judged = self._judged(question, by)
        hits = [c for c in self.visible(question) if judged(c)]
        return {c.id for c in hits}, {c.article_id for c in hits}

    def matches(self, question: Question, chunk: Chunk, by: str | None = None) -> bool:
        """Whether a passage is relevant: from a listed article (``by="topical"``), or holding an answer
        string (``by="answer string"``); by default the listed articles where there are any.

        Asked of passages of any chunking, so the tutorial baseline's are judged by the same rule.
        """
        return matches(chunk.published_at, chunk.source, self._cut(question)) and self._judged(question, by)(chunk)

    def _judged(self, question: Question, by: str | None) -> Callable[[Chunk], bool]:
        """The relevance rule of a judgement, its wanted articles resolved once per question."""
        if by is None:
            by = TOPICAL if question.relevant else ANSWER_STRING
        if by == TOPICAL:
            wanted = {self.url_to_article.get(r, r) for r in question.relevant or ()}
            return lambda chunk: chunk.article_id in wanted
        answers = question.answers or ()
        return lambda chunk: _contains_any(chunk.text, answers)


@dataclass(slots=True)
class RetrievalRow:
    question: Question
    query: str
    retriever: str
    latency_ms: float
    retrieved: list[dict[str, Any]]
    metrics: dict[str, float] = field(default_factory=dict)  # empty when nothing in the archive is relevant
    curve: list[float] = field(default_factory=list)
    kind: str | None = None  # question_kind() of a judged question
    judgement: str = ANSWER_STRING  # the set this row is judged in: TOPICAL or ANSWER_STRING


def _ranking_metrics(ranking: list[Ranked], total: int, k: int, prefix: str) -> dict[str, float]:
    return {
        f"{prefix}hit@1": hit_at(ranking, 1),
        f"{prefix}hit@5": hit_at(ranking, 5),
        f"{prefix}hit@10": hit_at(ranking, 10),
        f"{prefix}recall@{k}": recall_at(ranking, k, total),
        f"{prefix}mrr@10": mrr_at(ranking, 10),
        f"{prefix}ndcg@10": ndcg_at(ranking, 10, total),
    }


def _query_for(services: Services, question: Question, rewrite: bool) -> str:
    """A follow-up is asked after its earlier turns, in one session, and retrieved as rewritten."""
    if not question.history or not rewrite:
        return question.question
    session = new_session_id()
    for turn in question.history:
        services.answers.ask(turn, session_id=session, as_of=question.as_of)
    return services.answers.rewrite(question.question, session)


def _retriever(services: Services, spec: str, report: Callable[[str], None]) -> Retriever:
    if spec == "tutorial":
        from eval.baseline import tutorial_retriever

        def built(done: int, total: int) -> None:
            report(f"tutorial baseline: {done}/{total} passages embedded")

        return tutorial_retriever(services, built)
    return build_retriever(
        spec,
        services.settings,
        services.embedder,
        services.store,
        services.lexical,
        services.registry,
        services.pools.lexical,
    )


def evaluate_retrieval(
    services: Services,
    questions: Sequence[Question],
    retrievers: Sequence[str],
    k: int,
    progress: Progress,
    report: Callable[[str], None] = lambda line: None,
    rewrite: bool = True,
    fresh_days: int = FRESH_DAYS,
) -> list[RetrievalRow]:
    """``rewrite=False`` retrieves follow-ups as asked, to measure what the rewriter adds."""
    judge = Judge(services)
    # "default" is whichever retriever the settings choose; one instance serves both names.
    resolved = {n: services.settings.retrieval.retriever if n == "default" else n for n in retrievers}
    built = {r: _retriever(services, r, report) for r in dict.fromkeys(resolved.values())}
    rows: list[RetrievalRow] = []
    for question in progress(questions):
        query = _query_for(services, question, rewrite)
        # Read once for all retrievers; its time counts in each one's latency, as it does in /search.
        started = time.perf_counter()
        search = services.reader.query(query, k=k, as_of=question.as_of)
        reading_ms = (time.perf_counter() - started) * 1000
        results = {}
        for real, retriever in built.items():
            started = time.perf_counter()
            hits = retriever.retrieve(search)
            results[real] = (hits, reading_ms + (time.perf_counter() - started) * 1000)
        for judgement in judgements(question):
            relevant_chunks, relevant_articles = judge.relevant(question, judgement)
            kind = question_kind(question.as_of, (judge.by_id[c].published_at for c in relevant_chunks), fresh_days)
            for name, real in resolved.items():
                hits, latency = results[real]
                rows.append(
                    _retrieval_row(
                        question, query, name, latency, hits, judge, judgement, relevant_chunks, relevant_articles, k
                    )
                )
                rows[-1].kind = kind if rows[-1].metrics else None
    return rows


def _retrieval_row(
    question: Question,
    query: str,
    name: str,
    latency: float,
    hits: list[Hit],
    judge: Judge,
    judgement: str,
    relevant_chunks: set[str],
    relevant_articles: set[str],
    k: int,
) -> RetrievalRow:
    row = RetrievalRow(
        question,
        query,
        name,
        latency,
        [{"article_id": h.chunk.article_id, "chunk_id": h.chunk.id, "score": h.score} for h in hits],
        judgement=judgement,
    )
    if not relevant_chunks:
        return row
    judged = [h.chunk.id in relevant_chunks or judge.matches(question, h.chunk, judgement) for h in hits]
    passages = [Ranked(rel, h.score) for rel, h in zip(judged, hits, strict=True)]
    articles = [
        item
        for _, item in first_per_article(
            [(h.chunk.article_id, Ranked(h.chunk.article_id in relevant_articles, h.score)) for h in hits]
        )
    ]
    row.metrics = {
        # Another chunking (the baseline's) can hold more relevant passages than ours.
        **_ranking_metrics(passages, max(len(relevant_chunks), sum(judged)), k, "passage "),
        **_ranking_metrics(articles, len(relevant_articles), k, "article "),
    }
    row.curve = [hit_at(passages, i) for i in range(1, CURVE_K + 1)]
    for hit, rel in zip(row.retrieved, judged, strict=True):
        hit["relevant"] = rel
    return row


@dataclass(slots=True)
class AnswerRow:
    question: Question
    answer: str
    rewritten_query: str
    citations: list[dict[str, Any]]
    latency_ms: float
    metrics: dict[str, float] = field(default_factory=dict)
    mode: str = "default"  # the answerer (settings.answer.mode) that gave this answer
    question_type: str = OTHER  # analyze_question's kind: "who", "which/what", "where", "when", "how many", "other"
    short_answer: dict[str, Any] | None = None  # text, n, confidence, outlets
    # Whether the short answer is right, where that can be judged: a question with gold strings, or an
    # unanswerable one (any short answer to it is wrong). None: no verdict, or no short answer to judge.
    short_correct: bool | None = None
    min_confidence: float = 0.3  # the mode's threshold of "sure"

    @property
    def confidence(self) -> float | None:
        return None if self.short_answer is None else float(self.short_answer["confidence"])


def question_types(questions: Sequence[Question], nlp: Language | None) -> dict[str, str]:
    """Each question's kind by its question word, as the answerer reads it (spaCy, or word lists)."""
    return {q.id: analyze_question(q.question, nlp).kind for q in questions}


def short_answer_metrics(
    question: Question, short: ShortAnswer | None, threshold: float
) -> tuple[dict[str, float], bool | None]:
    """Short-answer accuracy, and "when sure": what a reader who trusts only confident answers gets.

    "coverage when sure" is over every question with a verdict (gold strings, or unanswerable): the share
    answered with confidence at least ``threshold``; "accuracy when sure" is the share of those that are
    right, a confident short answer to an unanswerable question counting as wrong.
    """
    metrics: dict[str, float] = {}
    if question.answers:
        verdict = short_answer_correct(short.text if short else None, question.answers, question.choices)
        metrics["short answer accuracy"] = float(verdict)
    elif question.unanswerable:
        verdict = False
    else:
        return metrics, None
    sure = short is not None and short.confidence >= threshold
    metrics["coverage when sure"] = float(sure)
    if sure:
        metrics["accuracy when sure"] = float(verdict)
    return metrics, verdict if short is not None else None


def evaluate_answers(
    answerers: Mapping[str, Services],
    questions: Sequence[Question],
    progress: Progress,
    nlp: Language | None = None,
) -> list[AnswerRow]:
    """Every question through every answerer (by mode name), one question at a time.

    The answerers take turns on each question, so a busy machine weighs on each alike, and each first
    answers one question untimed: models load on first use, and the first answerer would pay for all.
    """
    rows: list[AnswerRow] = []
    texts: dict[str, str] = {}
    types = question_types(questions, nlp)
    if questions:
        for services in answerers.values():
            services.answers.ask(questions[0].question, session_id=new_session_id(), as_of=questions[0].as_of)
    for question in progress(questions):
        for mode, services in answerers.items():
            rows.append(_answer_row(services, question, mode, types[question.id], texts))
    return rows


def _answer_row(
    services: Services, question: Question, mode: str, question_type: str, texts: dict[str, str]
) -> AnswerRow:
    session = new_session_id()
    for turn in question.history:
        services.answers.ask(turn, session_id=session, as_of=question.as_of)
    started = time.perf_counter()
    answer = services.answers.ask(question.question, session_id=session, as_of=question.as_of)
    latency = (time.perf_counter() - started) * 1000
    cited = {c.n: c.article_id for c in answer.citations}
    metrics: dict[str, float] = {}
    abstained = not answer.citations
    if question.unanswerable:
        metrics["abstention"] = float(abstained)
    else:
        metrics["false abstention"] = float(abstained)
    if question.answers:
        # A refusal names the nearest titles; an answer found there is not an answer given.
        metrics["accuracy"] = float(not abstained and answer_correct(answer.text, question.answers, question.choices))
        for article_id in cited.values():
            if article_id not in texts:
                texts[article_id] = services.store.article_text(article_id)
        support = citation_support([texts[a] for a in cited.values()], question.answers)
        if support is not None:
            metrics["citation support"] = support
    # The configured model did not write it (down, late, or it cited nothing the sources support).
    metrics["degraded"] = float(answer.degraded is not None)
    validity = citation_validity(answer.text, cited, set(answer.retrieved))
    if validity is not None:
        metrics["citation validity"] = validity
    threshold = services.settings.answer.min_confidence
    short = answer.short_answer
    short_metrics, verdict = short_answer_metrics(question, short, threshold)
    return AnswerRow(
        question,
        answer.text,
        answer.rewritten_query,
        [{"n": c.n, "article_id": c.article_id, "title": c.title} for c in answer.citations],
        latency,
        {**metrics, **short_metrics},
        mode=mode,
        question_type=question_type,
        short_answer=None
        if short is None
        else {"text": short.text, "n": short.n, "confidence": short.confidence, "outlets": list(short.outlets)},
        short_correct=verdict,
        min_confidence=threshold,
    )
