"""Fitting the reader's weights: the regression, the cross-validation and the calibration on made-up
candidates whose right answers follow one feature."""

from __future__ import annotations

import numpy as np

from backend.answering.reader import FEATURES
from eval.questions import Question
from eval.reader_fit import QuestionCandidates, cross_validate, fit, fit_logistic, fit_markdown


def test_the_regression_finds_the_feature_that_separates_right_from_wrong() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 3))
    y = x[:, 1] + 0.3 * rng.normal(size=400) > 0.5
    weights, _bias = fit_logistic(x, y, l2=1.0)
    assert weights[1] > 1.0 and abs(weights[0]) < 0.5 and abs(weights[2]) < 0.5


def rows(count: int, seed: int = 0) -> list[QuestionCandidates]:
    """Questions of six candidates each; the right one has the highest "proximity" most of the time."""
    rng = np.random.default_rng(seed)
    column = FEATURES.index("proximity")
    out = []
    for i in range(count):
        feats = rng.uniform(size=(6, len(FEATURES)))
        right = np.zeros(6, dtype=bool)
        right[int(np.argmax(feats[:, column]))] = rng.uniform() < 0.8
        question = Question(id=f"q{i}", question="Who?", answers=("x",))
        out.append(QuestionCandidates(question, "who", [f"c{k}" for k in range(6)], feats, right))
    out.append(
        QuestionCandidates(
            Question(id="none", question="Who?"), "who", [], np.zeros((0, len(FEATURES))), np.zeros(0, dtype=bool)
        )
    )
    return out


def test_cross_validated_accuracy_and_what_each_feature_earns() -> None:
    data = rows(120)
    choices = cross_validate(data)
    assert len(choices) == len(data) and choices[-1] == (False, 0.0)  # a question with no candidate
    result = fit(data)
    assert result.accuracy > 0.6  # the best candidate is right for most of the 80% that have a right one
    assert result.earns["proximity"] > 0.3 and max(v for k, v in result.earns.items() if k != "proximity") < 0.1
    assert result.weights["proximity"] == max(result.weights.values())
    assert result.reachable == np.mean([bool(r.right.any()) for r in data])  # about 0.8 of those with candidates
    # Confidence grows with the best candidate's share and score.
    assert result.calibration[0] > 0 or result.calibration[1] > 0
    markdown = fit_markdown(result, len(data))
    assert "| proximity |" in markdown and "WEIGHTS = (" in markdown and "CALIBRATION = (" in markdown
