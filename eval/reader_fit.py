"""Fits the reader's feature weights on a question set, and says what each feature earns.

The reader scores a candidate answer as a weighted sum of its features; a logistic regression over
every candidate of every question (is it the right answer?) sets the weights, so the score is also a
probability, the answer's confidence. Accuracy is measured by k-fold cross-validation over questions:
a question's candidates are scored by weights fitted without it. A feature's worth is what the
cross-validated accuracy loses without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backend.answering.reader import FEATURES, Reader
from backend.nlp import load_nlp
from backend.services import Services
from eval.metrics import short_answer_correct
from eval.questions import Question


@dataclass(slots=True)
class QuestionCandidates:
    question: Question
    kind: str
    texts: list[str]
    features: NDArray[np.float64]  # candidates x FEATURES
    right: NDArray[Any]


def collect(
    services: Services, questions: Sequence[Question], progress: Callable[[Iterable[Question]], Iterable[Question]]
) -> list[QuestionCandidates]:
    nlp = load_nlp()
    if nlp is None:
        raise RuntimeError("spaCy's English model is not installed: the reader cannot run (make install adds it)")
    reader = Reader(
        nlp, services.embedder, services.store.article_text, max_sources=services.settings.answer.max_sources
    )
    out = []
    for q in progress(questions):
        result = reader.read(q.question, services.answers.sources_for(q.question, as_of=q.as_of))
        feats = np.array([[c.features.get(f, 0.0) for f in FEATURES] for c in result.candidates], dtype=float)
        right = np.array(
            [short_answer_correct(c.text, q.answers or (), q.choices) for c in result.candidates], dtype=bool
        )
        texts = [c.text for c in result.candidates]
        out.append(QuestionCandidates(q, result.question.kind, texts, feats.reshape(-1, len(FEATURES)), right))
    return out


def fit_logistic(
    x: NDArray[np.float64], y: NDArray[Any], l2: float = 1.0, iterations: int = 50
) -> tuple[NDArray[np.float64], float]:
    """L2-regularised logistic regression by Newton's method: (weights, bias). The bias is not penalised."""
    n, d = x.shape
    a = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    target = y.astype(float)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ w, -30, 30)))
        grad = a.T @ (p - target) + penalty * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


def top_choices(
    rows: Sequence[QuestionCandidates], weights: NDArray[np.float64], bias: float
) -> list[tuple[bool, float]]:
    """Per question: is its best-scored candidate right, and that candidate's probability (0 when none)."""
    out = []
    for row in rows:
        if not len(row.right):
            out.append((False, 0.0))
            continue
        scores = row.features @ weights + bias
        best = int(np.argmax(scores))
        out.append((bool(row.right[best]), float(1.0 / (1.0 + np.exp(-scores[best])))))
    return out


def cross_validate(
    rows: Sequence[QuestionCandidates],
    columns: Sequence[int] | None = None,
    folds: int = 5,
    l2: float = 1.0,
    seed: int = 0,
) -> list[tuple[bool, float]]:
    """Each question's top choice under weights fitted on the other folds, using only ``columns``."""
    cols = list(range(len(FEATURES))) if columns is None else list(columns)
    fold_of = np.random.default_rng(seed).permutation(len(rows)) % folds
    out: list[tuple[bool, float]] = [(False, 0.0)] * len(rows)
    for f in range(folds):
        train = [r for r, k in zip(rows, fold_of, strict=True) if k != f and len(r.right)]
        x = np.vstack([r.features[:, cols] for r in train])
        y = np.concatenate([r.right for r in train])
        w, b = fit_logistic(x, y, l2)
        full = np.zeros(len(FEATURES))
        full[cols] = w
        test = [i for i, k in enumerate(fold_of) if k == f]
        for i, choice in zip(test, top_choices([rows[i] for i in test], full, b), strict=True):
            out[i] = choice
    return out


def fit_calibration(rows: Sequence[QuestionCandidates], weights: NDArray[np.float64], bias: float) -> tuple[float, ...]:
    """Platt scaling of the best candidate: (share weight, score weight, bias) for ``reader.calibrated``,
    fitted on whether each question's best candidate is right."""
    x, y = [], []
    for row in rows:
        if not len(row.right):
            continue
        scores = row.features @ weights + bias
        best = int(np.argmax(scores))
        share = 1.0 / float(np.exp(scores - scores[best]).sum())
        x.append([np.log(max(share, 1e-9) / max(1.0 - share, 1e-9)), scores[best]])
        y.append(bool(row.right[best]))
    w, b = fit_logistic(np.array(x), np.array(y), l2=0.01)
    return (float(w[0]), float(w[1]), b)


@dataclass(slots=True)
class Fit:
    weights: dict[str, float]
    bias: float
    accuracy: float  # cross-validated share of questions whose best candidate is right
    reachable: float  # share of questions with any right candidate: the ceiling of the reader
    earns: dict[str, float]  # cross-validated accuracy lost without each feature
    calibration: tuple[float, ...]
    choices: list[tuple[bool, float]]  # cross-validated (right, confidence) per question


def fit(rows: Sequence[QuestionCandidates], l2: float = 3.0) -> Fit:
    usable = [r for r in rows if len(r.right)]
    w, b = fit_logistic(np.vstack([r.features for r in usable]), np.concatenate([r.right for r in usable]), l2)
    choices = cross_validate(rows, l2=l2)
    accuracy = float(np.mean([c[0] for c in choices]))
    earns = {}
    for i, name in enumerate(FEATURES):
        without = cross_validate(rows, [j for j in range(len(FEATURES)) if j != i], l2=l2)
        earns[name] = accuracy - float(np.mean([c[0] for c in without]))
    return Fit(
        weights={name: float(v) for name, v in zip(FEATURES, w, strict=True)},
        bias=b,
        accuracy=accuracy,
        reachable=float(np.mean([bool(r.right.any()) for r in rows])),
        earns=earns,
        calibration=fit_calibration(rows, w, b),
        choices=choices,
    )


def fit_markdown(result: Fit, questions: int) -> str:
    lines = [
        "# Reader weights",
        "",
        f"{questions} questions. Cross-validated (5 folds over questions) short-answer accuracy of the best "
        f"candidate: {result.accuracy:.3f}; questions with any right candidate: {result.reachable:.3f}.",
        "",
        "| feature | weight | accuracy lost without it |",
        "|---|---|---|",
    ]
    for name in FEATURES:
        lines.append(f"| {name} | {result.weights[name]:+.2f} | {result.earns[name]:+.3f} |")
    weights = ", ".join(f"{result.weights[n]:.2f}" for n in FEATURES)
    lines += [
        "",
        "For backend/answering/reader.py:",
        "",
        "```python",
        f"WEIGHTS = ({weights})",
        f"BIAS = {result.bias:.2f}",
        f"CALIBRATION = ({', '.join(f'{v:.3f}' for v in result.calibration)})",
        "```",
    ]
    return "\n".join(lines) + "\n"
