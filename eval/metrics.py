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
