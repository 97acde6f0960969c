"""The answers report from rows built by hand: short answers, calibration and answerers side by side.

The demo run (test_eval_demo.py) shows the report on real answers; here the short answers are chosen so
every figure can be checked by hand, whichever answerer the backend ships.
"""

import json
from pathlib import Path
from typing import Any

import pytest

from eval.metrics import expected_calibration_error
from eval.questions import Question
from eval.report import write_answers
from eval.runner import AnswerRow, short_answer_metrics

PNG = b"\x89PNG\r\n\x1a\n"


def _row(
    mode: str, qid: str, kind: str, short: str | None, confidence: float, gold: tuple[str, ...] | None, latency: float
) -> AnswerRow:
    from backend.core.types import ShortAnswer

    question = Question(id=qid, question=f"{kind} {qid}?", answers=gold)
    given = ShortAnswer(short, 1, confidence) if short is not None else None
    metrics, verdict = short_answer_metrics(question, given, 0.3)
    metrics["accuracy"] = metrics.get("short answer accuracy", 0.0)
    metrics["false abstention"] = 0.0
    return AnswerRow(
        question,
        f"{short or 'Nothing'} [1].",
        question.question,
        [{"n": 1, "article_id": "a", "title": "A"}],
        latency,
        metrics,
        mode=mode,
        question_type=kind,
        short_answer=None if given is None else {"text": short, "n": 1, "confidence": confidence, "outlets": []},
        short_correct=verdict,
        min_confidence=0.3,
    )


# (id, type, gold, reader's short answer and confidence); the quotes answerer gives no short answers.
CASES: list[tuple[str, str, tuple[str, ...] | None, str | None, float]] = [
    ("q1", "who", ("Mardan Salih",), "Salih", 0.92),
    ("q2", "who", ("Imad Al-Maliki",), "Mardan Salih", 0.35),
    ("q3", "when", ("March 2023",), "March 2023", 0.81),
    ("q4", "when", ("1999",), None, 0.0),
    ("q5", "other", (), "Banana bread", 0.12),  # unanswerable: any short answer is wrong
    ("q6", "how many", ("99 percent",), "99 percent", 0.55),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("answers")
    rows = []
    for qid, kind, gold, short, confidence in CASES:
        rows.append(_row("short", qid, kind, short, confidence, gold, 100.0))
        rows.append(_row("quotes", qid, kind, None, 0.0, gold, 150.0))
    return write_answers(rows, {"question_set": "hand-made"}, out), out


def test_short_answer_accuracy_and_when_sure(report: tuple[dict[str, Any], Path]) -> None:
    short = report[0]["modes"]["short"]
    assert short["metrics"]["short answer accuracy"]["mean"] == pytest.approx(3 / 5)  # q1 q3 q6 of 5 with gold
    calibration = short["calibration"]
    assert calibration["short_answers"] == 5 and calibration["judged"] == 5
    # Sure (>= 0.3): q1 q2 q3 q6 of the 6 questions with a verdict; right: q1 q3 q6.
    assert calibration["coverage when sure"]["mean"] == pytest.approx(4 / 6)
    assert calibration["coverage when sure"]["n"] == 6
    assert calibration["accuracy when sure"]["mean"] == pytest.approx(3 / 4)
    assert calibration["mean_confidence"]["mean"] == pytest.approx((0.92 + 0.35 + 0.81 + 0.12 + 0.55) / 5)
    assert calibration["ece"] == pytest.approx(
        expected_calibration_error([0.92, 0.35, 0.81, 0.12, 0.55], [True, False, True, False, True])
    )
    assert [b["count"] for b in calibration["bins"]] == [0, 1, 0, 1, 0, 1, 0, 0, 1, 1]
    assert calibration["bins"][0]["confidence"] is None  # an empty bin is null, never NaN, in the JSON


def test_no_short_answers_is_no_calibration_and_every_answer_wrong(report: tuple[dict[str, Any], Path]) -> None:
    quotes = report[0]["modes"]["quotes"]
    assert quotes["metrics"]["short answer accuracy"]["mean"] == 0.0
    assert quotes["calibration"]["judged"] == 0 and quotes["calibration"]["ece"] is None
    assert quotes["metrics"]["coverage when sure"]["mean"] == 0.0


def test_metrics_by_question_type(report: tuple[dict[str, Any], Path]) -> None:
    data, out = report
    assert data["question_types"] == {"who": 2, "when": 2, "how many": 1, "other": 1}
    who = data["modes"]["short"]["by_question_type"]["who"]
    assert who["questions"] == 2
    assert who["metrics"]["short answer accuracy"] == {"mean": 0.5, "low": 0.0, "high": 1.0, "n": 2}
    assert data["modes"]["short"]["by_question_type"]["other"]["metrics"]["short answer accuracy"]["n"] == 0
    markdown = (out / "report.md").read_text()
    assert "## By question type" in markdown
    assert "| who | 2 | short answer accuracy | 0.500 [0.000, 1.000] n=2 | 0.000 [0.000, 0.000] n=2 |" in markdown


def test_answerers_compared_side_by_side(report: tuple[dict[str, Any], Path]) -> None:
    data, out = report
    assert list(data["modes"]) == ["short", "quotes"]
    compared = {c["metric"]: c for c in data["comparisons"]}
    assert set(compared) == {"accuracy", "short answer accuracy", "false abstention", "latency ms"}
    assert compared["short answer accuracy"]["difference"]["mean"] == pytest.approx(3 / 5)
    assert compared["latency ms"]["difference"]["mean"] == pytest.approx(-50.0)
    assert all(c["a"] == "short" and c["b"] == "quotes" for c in data["comparisons"])
    assert data["modes"]["quotes"]["latency_ms"]["p50"] == 150.0
    markdown = (out / "report.md").read_text()
    assert (
        "| metric | short | quotes |" in markdown and "| latency p50 / p95 (ms) | 100 / 100 | 150 / 150 |" in markdown
    )
    assert "| short - quotes | short answer accuracy | 0.600 [" in markdown


def test_calibration_section_and_plots(report: tuple[dict[str, Any], Path]) -> None:
    _, out = report
    markdown = (out / "report.md").read_text()
    assert "## Calibration of the short answers" in markdown
    assert "![Reliability: accuracy by confidence bin](reliability.png)" in markdown
    assert "| [0.9, 1.0] | 1 | 0.920 | 1.000 |" in markdown  # the reliability table, short answers only
    assert "| [0.1, 0.2) | 1 | 0.120 | 0.000 |" in markdown
    for name in ("report.png", "reliability.png"):
        assert (out / name).read_bytes()[:8] == PNG


def test_per_question_records_each_answerer(report: tuple[dict[str, Any], Path]) -> None:
    _, out = report
    records = [json.loads(line) for line in (out / "per_question.jsonl").read_text().splitlines()]
    assert [r["question"]["id"] for r in records] == [c[0] for c in CASES]
    first = records[0]
    assert first["question_type"] == "who" and set(first["modes"]) == {"short", "quotes"}
    assert first["modes"]["short"]["short_answer"]["text"] == "Salih"
    assert first["modes"]["short"]["confidence"] == 0.92 and first["modes"]["short"]["short_correct"] is True
    assert first["modes"]["quotes"]["short_answer"] is None and first["modes"]["quotes"]["confidence"] is None
