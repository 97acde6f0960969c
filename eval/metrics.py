"""Retrieval and answer metrics as pure functions, plus bootstrap intervals and paired tests.

Rankings may contain ties (equal scores). Every ranking metric here is *tie-aware*: it is the
expected value of the metric over all orders of the tied items (McSherry and Najork, 2008), so a
retriever gains nothing from the arbitrary order in which it returns equal scores.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Ranked:
    """One retrieved item: whether it is relevant, and the score it was ranked by."""

    relevant: bool
    score: float


def _groups(ranking: Sequence[Ranked]) -> list[tuple[int, int, int]]:
    """Tie groups as ``(start, size, relevant_count)``, in rank order (the list is best first)."""
    groups: list[tuple[int, int, int]] = []
    i = 0
    while i < len(ranking):
        j = i
        while j + 1 < len(ranking) and ranking[j + 1].score == ranking[i].score:
            j += 1
        groups.append((i, j - i + 1, sum(r.relevant for r in ranking[i : j + 1])))
        i = j + 1
    return groups


def expected_relevant_in_top(ranking: Sequence[Ranked], k: int) -> float:
    total = 0.0
    for start, size, rel in _groups(ranking):
        inside = max(0, min(k, start + size) - start)
        total += rel * inside / size
    return total


def hit_at(ranking: Sequence[Ranked], k: int) -> float:
    """Probability that at least one relevant item is in the top ``k``."""
    for start, size, rel in _groups(ranking):
        if start >= k:
            return 0.0
        if rel == 0:
            continue
        inside = min(k, start + size) - start
        if inside >= size - rel + 1:
            return 1.0
        return 1.0 - math.comb(size - rel, inside) / math.comb(size, inside)
    return 0.0


def recall_at(ranking: Sequence[Ranked], k: int, total_relevant: int) -> float:
    if total_relevant <= 0:
        raise ValueError("recall is undefined without relevant items")
    return min(1.0, expected_relevant_in_top(ranking, k) / total_relevant)


def mrr_at(ranking: Sequence[Ranked], k: int = 10) -> float:
    """Expected reciprocal rank of the first relevant item, 0 when it falls below ``k``."""
    for start, size, rel in _groups(ranking):
        if start >= k:
            return 0.0
        if rel == 0:
            continue
        expected = 0.0
        for j in range(size - rel + 1):  # the first relevant item lands at offset j in the group
            position = start + j + 1
            if position > k:
                break
            expected += math.comb(size - j - 1, rel - 1) / math.comb(size, rel) / position
        return expected
    return 0.0


def ndcg_at(ranking: Sequence[Ranked], k: int, total_relevant: int) -> float:
    """Binary-gain nDCG; the ideal ranking puts ``min(total_relevant, k)`` relevant items first."""
    if total_relevant <= 0:
        raise ValueError("nDCG is undefined without relevant items")
    dcg = 0.0
    for start, size, rel in _groups(ranking):
        gain = rel / size  # each position of a tie group holds its average gain
        for position in range(start, min(start + size, k)):
            dcg += gain / math.log2(position + 2)
    ideal = sum(1 / math.log2(p + 2) for p in range(min(total_relevant, k)))
    return dcg / ideal


def first_per_article(items: Sequence[tuple[str, Ranked]]) -> list[tuple[str, Ranked]]:
    """Article-level ranking: each article at the rank of its best passage; later passages dropped."""
    seen: set[str] = set()
    out = []
    for article_id, item in items:
        if article_id not in seen:
            seen.add(article_id)
            out.append((article_id, item))
    return out


# --- answers -------------------------------------------------------------------------------------

_MARKER = re.compile(r"\[(\d+)\]")


def _contains(text: str, needle: str) -> bool:
    return needle.casefold() in text.casefold()


def answer_correct(answer: str, gold: Sequence[str], choices: Sequence[str] | None = None) -> bool:
    """Contains a gold answer and, where choices are given, no other choice (a hedge is not an answer)."""
    if not any(_contains(answer, g) for g in gold):
        return False
    others = [c for c in choices or () if not any(_contains(c, g) or _contains(g, c) for g in gold)]
    return not any(_contains(answer, o) for o in others)


# The short answer is a few words, so it is matched on word boundaries: "UK" is not in "Ukraine".
# Function words do not count towards "most of a gold string" ("the Bank of England" vs "Bank England").
_FUNCTION_WORDS = frozenset("a an the of and or in on at to for by".split())
_POSSESSIVE = re.compile(r"['’]s\b")
_TOKEN = re.compile(r"\w+")
# A part of a gold string counts only from this many characters: "99" is not "99 percent".
MIN_PART_CHARS = 4


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def _has_phrase(text: str, phrase: str) -> bool:
    """``phrase`` in ``text``, case-insensitive, not inside a longer word."""
    return re.search(rf"(?<!\w){re.escape(_fold(phrase))}(?!\w)", _fold(text)) is not None


def _content_tokens(text: str) -> set[str]:
    return {t for t in _TOKEN.findall(_POSSESSIVE.sub("", text.casefold())) if t not in _FUNCTION_WORDS}


def _is_most_of(part: str, whole: str) -> bool:
    """``part`` names ``whole`` by a large share of its words: "Benedict XVI" for "Pope Benedict XVI"."""
    if len(part.strip()) < MIN_PART_CHARS:
        return False
    part_tokens, whole_tokens = _content_tokens(part), _content_tokens(whole)
    return bool(part_tokens) and part_tokens <= whole_tokens and 2 * len(part_tokens) >= len(whole_tokens)


def short_names(short: str, target: str) -> bool:
    """Whether a short answer names ``target``: it contains it, or it is most of it.

    Most of it: at least ``MIN_PART_CHARS`` characters, every content word of the short answer is in
    ``target`` and they are at least half of its content words. So "Salih" names "Mardan Salih" and
    "Benedict XVI" names "Pope Benedict XVI", while "Pope" or "Benedict" alone do not; a reader's
    surname-only answer counts, a fragment that fits several people does not.
    """
    return _has_phrase(short, target) or _is_most_of(short, target)


def short_answer_correct(short: str | None, gold: Sequence[str], choices: Sequence[str] | None = None) -> bool:
    """The short answer names a gold answer and, where choices are given, no other choice.

    No short answer is a wrong one: the metric measures the reader, and a reader that says nothing
    has not answered. Choices that overlap a gold string (either contains the other) are not "other".
    """
    if short is None or not short.strip():
        return False
    if not any(short_names(short, g) for g in gold):
        return False
    others = [c for c in choices or () if not any(_contains(c, g) or _contains(g, c) for g in gold)]
    return not any(short_names(short, o) for o in others)


# --- calibration ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """Answers whose confidence fell in ``[low, high)`` (the last bin includes 1.0).

    ``confidence`` and ``accuracy`` are means over the bin, NaN when it is empty.
    """

    low: float
    high: float
    count: int
    confidence: float
    accuracy: float


def reliability_bins(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> list[ReliabilityBin]:
    """Equal-width confidence bins over [0, 1], each with its count, mean confidence and accuracy."""
    if len(confidences) != len(correct):
        raise ValueError("one correctness verdict per confidence")
    if bins < 1:
        raise ValueError("at least one bin")
    conf = np.asarray(confidences, dtype=float)
    if conf.size and (np.isnan(conf).any() or conf.min() < 0.0 or conf.max() > 1.0):
        raise ValueError("confidences must lie in [0, 1]")
    right = np.asarray(correct, dtype=float)
    index = np.minimum((conf * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        inside = index == b
        count = int(inside.sum())
        out.append(
            ReliabilityBin(
                low=b / bins,
                high=(b + 1) / bins,
                count=count,
                confidence=float(conf[inside].mean()) if count else math.nan,
                accuracy=float(right[inside].mean()) if count else math.nan,
            )
        )
    return out


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """ECE: the count-weighted mean gap between confidence and accuracy over equal-width bins.

    0 for a perfectly calibrated reader; NaN without answers. With one bin it is the gap between the
    mean confidence and the accuracy, which a reader can have right while ranking its answers badly:
    the reliability table shows where the gaps are.
    """
    if not confidences:
        return math.nan
    total = len(confidences)
    return sum(
        b.count / total * abs(b.accuracy - b.confidence)
        for b in reliability_bins(confidences, correct, bins)
        if b.count
    )


def citation_validity(answer: str, cited: dict[int, str], retrieved: set[str]) -> float | None:
    """Share of ``[n]`` markers that name a citation of a retrieved article; None without markers."""
    markers = [int(m) for m in _MARKER.findall(answer)]
    if not markers:
        return None
    return sum(1 for n in markers if n in cited and cited[n] in retrieved) / len(markers)


def citation_support(cited_texts: Sequence[str], gold: Sequence[str]) -> float | None:
    """Share of cited articles whose text contains a gold answer; None without citations."""
    if not cited_texts:
        return None
    return sum(1 for text in cited_texts if any(_contains(text, g) for g in gold)) / len(cited_texts)


# --- statistics ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Estimate:
    mean: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def bootstrap_ci(values: Sequence[float], *, resamples: int = 2000, seed: int = 0, level: float = 0.95) -> Estimate:
    """Percentile bootstrap interval of the mean; ``n`` is the number of questions behind it."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return Estimate(
        float(data.mean()), float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail)), int(data.size)
    )


@dataclass(frozen=True, slots=True)
class Comparison:
    difference: Estimate  # mean of a - b with its bootstrap interval
    p_value: float  # paired sign-flip permutation test, two-sided

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05


def paired_comparison(a: Sequence[float], b: Sequence[float], *, resamples: int = 5000, seed: int = 0) -> Comparison:
    """Compare two systems on the same questions: is the mean difference more than noise?"""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if diff.size == 0:
        return Comparison(Estimate(math.nan, math.nan, math.nan, 0), 1.0)
    observed = abs(diff.mean())
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(resamples, diff.size))
    extreme = np.count_nonzero(np.abs((signs * diff).mean(axis=1)) >= observed - 1e-12)
    p_value = (extreme + 1) / (resamples + 1)
    return Comparison(bootstrap_ci(diff.tolist(), seed=seed), float(p_value))


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else math.nan
