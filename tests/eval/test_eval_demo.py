"""The evaluation suite end to end on the demo archive, and the CI guard on retrieval quality."""

import json
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from backend.embedding import SentenceTransformerEmbedder
from backend.nlp import load_nlp
from backend.services import Services, build_services
from eval.metrics import short_answer_correct
from eval.questions import Question, load_questions
from eval.report import write_answers, write_retrieval
from eval.runner import AnswerRow, evaluate_answers, evaluate_retrieval, question_kind
from tests.conftest import ROOT

QUESTIONS = ROOT / "demo" / "questions.jsonl"
# Measured on the demo archive (24 judged questions): passage hit@5 was 1.000 for dense and BM25.
# Two misses more than that fail CI.
MIN_DEFAULT_HIT_AT_5 = 0.9


def _quiet(questions: Iterable[Question]) -> Iterable[Question]:
    return questions


@pytest.fixture(scope="module")
def retrieval_report(demo_services: Services, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:  # type: ignore[type-arg]
    out = tmp_path_factory.mktemp("eval") / "retrieval"
    rows = evaluate_retrieval(demo_services, load_questions(QUESTIONS), ["dense", "bm25", "default"], 10, _quiet)
    return write_retrieval(rows, {"question_set": str(QUESTIONS), "k": 10}, out), out


def test_retrieval_quality_on_the_demo_archive_holds(retrieval_report: tuple[dict, Path]) -> None:  # type: ignore[type-arg]
    report, _ = retrieval_report
    answer_string = report["sets"]["answer string"]
    hit5 = answer_string["retrievers"]["default"]["metrics"]["passage hit@5"]
    assert hit5["n"] == answer_string["judged_questions"] == 22
    assert hit5["mean"] >= MIN_DEFAULT_HIT_AT_5, f"default retriever passage hit@5 fell to {hit5['mean']:.3f}"
    # The two questions that name their article are judged by it, in the topical set only.
    topical = report["sets"]["topical"]
    assert topical["judged_questions"] == topical["questions"] == 2
    assert topical["retrievers"]["default"]["metrics"]["article hit@5"]["mean"] == 1.0


def test_retrieval_report_files(retrieval_report: tuple[dict, Path]) -> None:  # type: ignore[type-arg]
    report, out = retrieval_report
    # The off-archive questions and the one asked too early.
    assert report["sets"]["answer string"]["no_relevant_in_archive"] == 3
    assert report["questions"] == 27 and report["latency_ms"]["dense"]["n"] == 27
    rows = [json.loads(line) for line in (out / "per_question.jsonl").read_text().splitlines()]
    assert len(rows) == 27 * 3  # each demo question is in one set
    assert sum(r["judgement"] == "topical" for r in rows) == 2 * 3
    follow_up = next(r for r in rows if r["question"]["id"] == "qaratapa-followup")
    assert "Qaratapa-Hamrin" in follow_up["query"]
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (out / "report.md").read_text()
    assert "| hit@5 |" in markdown and "dense - bm25" in markdown
    # Topical first, and article level before passage level within each set.
    assert markdown.index("## Topical set") < markdown.index("## Answer-string set")
    assert markdown.index("### Article level") < markdown.index("### Passage level")
    for entry in report["sets"].values():
        for metric, estimate in entry["retrievers"]["bm25"]["metrics"].items():
            assert estimate["low"] <= estimate["mean"] <= estimate["high"], metric
        assert len(entry["retrievers"]["dense"]["hit_curve"]) == 10


def test_judged_questions_are_reported_by_kind(retrieval_report: tuple[dict, Path]) -> None:  # type: ignore[type-arg]
    report, out = retrieval_report
    # No question judged by its answer string has an as_of; of the two labelled ones, rate-january (as of
    # 1 February) is about demo-007, published on 25 January.
    assert {k: e["questions"] for k, e in report["sets"]["answer string"]["by_kind"].items()} == {"undated": 22}
    kinds = report["sets"]["topical"]["by_kind"]
    assert {k: e["questions"] for k, e in kinds.items()} == {"fresh": 1, "undated": 1}
    assert kinds["fresh"]["retrievers"]["default"]["article hit@5"]["n"] == 1
    markdown = (out / "report.md").read_text()
    assert "### By question kind" in markdown and "| fresh | 1 | article hit@5 |" in markdown


def test_a_labelled_question_is_judged_by_its_labels_and_by_its_answer(demo_services: Services) -> None:
    """Topical labels and the answer string judge the same ranking apart: labelled with an article that
    is not about it, the question finds its answer (answer string) but not its "topic" (topical)."""
    question = Question(
        id="mislabelled",
        question="Who commands the Qaratapa-Hamrin sector?",
        answers=("Mardan Salih",),
        relevant=("https://meridian-wire.example/2023/12/solvane-processor",),
    )
    rows = evaluate_retrieval(demo_services, [question], ["bm25"], 10, _quiet)
    by_set = {r.judgement: r for r in rows}
    assert set(by_set) == {"topical", "answer string"}
    assert by_set["answer string"].metrics["article hit@1"] == 1.0
    assert by_set["topical"].metrics["article hit@1"] == 0.0
    # One retrieval, judged twice.
    assert [h["chunk_id"] for h in by_set["topical"].retrieved] == [
        h["chunk_id"] for h in by_set["answer string"].retrieved
    ]
    topical_hits = [h for h in by_set["topical"].retrieved if h["relevant"]]
    assert all(h["article_id"] == "demo-016" for h in topical_hits)


def _day(iso: str) -> datetime:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("as_of", "published", "kind"),
    [
        (date(2023, 9, 14), ["2023-09-11"], "fresh"),
        (date(2023, 9, 14), ["2023-08-31T00:00:00"], "fresh"),  # 14 calendar days before as_of
        (date(2023, 9, 14), ["2023-08-30T23:59:00"], "background"),
        (date(2023, 9, 14), ["2014-07-28", "2023-09-12"], "fresh"),  # the freshest article decides
        (date(2023, 9, 14), ["2014-07-28", None], "background"),
        (None, ["2023-09-12"], "undated"),
        (date(2023, 9, 14), [None], "undated"),
    ],
)
def test_question_kind(as_of: date | None, published: list[str | None], kind: str) -> None:
    assert question_kind(as_of, [_day(p) if p else None for p in published], fresh_days=14) == kind


def test_as_of_hides_later_articles_from_the_judge(retrieval_report: tuple[dict, Path]) -> None:  # type: ignore[type-arg]
    _, out = retrieval_report
    rows = [json.loads(line) for line in (out / "per_question.jsonl").read_text().splitlines()]
    january = [r for r in rows if r["question"]["id"] == "rate-january"]
    assert all(r["metrics"] for r in january)
    assert all(hit["article_id"] != "demo-008" for r in january for hit in r["retrieved"])  # published in March


@pytest.fixture(scope="module")
def answers_report(
    demo_services: Services, embedder: SentenceTransformerEmbedder, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict, list[AnswerRow], Path]:  # type: ignore[type-arg]
    """Both answerers over the demo archive, as ``byline eval answers --modes short,quotes`` builds them:
    a second set of services on the same data directory (embedded Chroma shares one system per path)."""
    settings = demo_services.settings
    quotes = build_services(
        settings.model_copy(update={"answer": settings.answer.model_copy(update={"mode": "quotes"})}), embedder
    )
    answerers = {"short": demo_services, "quotes": quotes}
    assert demo_services.settings.answer.mode == "short"
    rows = evaluate_answers(answerers, load_questions(QUESTIONS), _quiet, nlp=load_nlp())
    out = tmp_path_factory.mktemp("answers")
    return write_answers(rows, {"question_set": str(QUESTIONS)}, out), rows, out


def test_answer_evaluation_on_the_demo_archive(answers_report: tuple[dict, list[AnswerRow], Path]) -> None:  # type: ignore[type-arg]
    report, rows, out = answers_report
    assert report["questions"] == 27 and list(report["modes"]) == ["short", "quotes"]
    for mode in ("short", "quotes"):
        metrics = report["modes"][mode]["metrics"]
        assert metrics["citation validity"]["mean"] == 1.0, mode
        # The reader's weights were fitted on real news quizzes; on the demo it answers 16 of 22 (2026-11-30),
        # the quoting answerer 18 or more: see docs/answers.md.
        assert metrics["accuracy"]["n"] == 22 and metrics["accuracy"]["mean"] >= (0.7 if mode == "short" else 0.8), mode
        assert metrics["short answer accuracy"]["mean"] >= (0.5 if mode == "short" else 0.0), mode
        assert metrics["abstention"]["n"] == 3, mode
        assert metrics["short answer accuracy"]["n"] == 22, mode
        assert metrics["coverage when sure"]["n"] == 25, mode  # 22 with gold strings, 3 unanswerable
    quotes = {r.question.id: r for r in rows if r.mode == "quotes"}
    assert "99 percent" in quotes["qaratapa-followup"].answer
    assert all(r.short_answer is None for r in quotes.values())  # the quoting answerer reads no short answer
    assert report["modes"]["quotes"]["metrics"]["short answer accuracy"]["mean"] == 0.0
    lines = (out / "per_question.jsonl").read_text().splitlines()
    assert len(lines) == 27 and all(set(json.loads(line)["modes"]) == {"short", "quotes"} for line in lines)


def test_short_answers_are_judged_whenever_the_reader_gives_them(
    answers_report: tuple[dict, list[AnswerRow], Path],  # type: ignore[type-arg]
) -> None:
    """Holds before and after the short-answer reader lands: with none, nothing is calibrated."""
    report, rows, _ = answers_report
    short = [r for r in rows if r.mode == "short"]
    given = [r for r in short if r.short_answer is not None]
    calibration = report["modes"]["short"]["calibration"]
    assert calibration["short_answers"] == len(given)
    assert sum(b["count"] for b in calibration["bins"]) == calibration["judged"]
    assert (calibration["ece"] is None) == (calibration["judged"] == 0)
    for r in given:
        assert 0.0 <= r.short_answer["confidence"] <= 1.0  # type: ignore[index]
        if r.question.answers:
            assert r.short_correct is short_answer_correct(
                r.short_answer["text"], r.question.answers, r.question.choices
            )  # type: ignore[index]


def test_answers_by_question_type(answers_report: tuple[dict, list[AnswerRow], Path]) -> None:  # type: ignore[type-arg]
    report, rows, out = answers_report
    types = {r.question.id: r.question_type for r in rows}
    assert types["qaratapa-commander"] == "who" and types["dockers-count"] == "how many"
    assert types["makhmour"] == "where" and types["flood-wall"] == "when"
    assert sum(report["question_types"].values()) == 27
    for mode in ("short", "quotes"):
        by_type = report["modes"][mode]["by_question_type"]
        assert {t: e["questions"] for t, e in by_type.items()} == report["question_types"]
        assert sum(e["metrics"]["accuracy"]["n"] for e in by_type.values()) == 22
    markdown = (out / "report.md").read_text()
    assert "## By question type" in markdown and "| who | " in markdown


def test_answer_report_sections_and_plots(answers_report: tuple[dict, list[AnswerRow], Path]) -> None:  # type: ignore[type-arg]
    report, _, out = answers_report
    compared = {c["metric"] for c in report["comparisons"]}
    assert compared == {"accuracy", "short answer accuracy", "citation support", "false abstention", "latency ms"}
    for mode in ("short", "quotes"):
        latency = report["modes"][mode]["latency_ms"]
        assert latency["n"] == 27 and 0 < latency["p50"] <= latency["p95"]
    markdown = (out / "report.md").read_text()
    for section in (
        "| metric | short | quotes |",
        "## Calibration of the short answers",
        "## Differences between answerers",
    ):
        assert section in markdown
    assert "| short - quotes | short answer accuracy |" in markdown
    for name in ("report.png", "reliability.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    json.loads((out / "report.json").read_text())  # strict JSON: no NaN where a figure is undefined


def test_a_report_names_the_default_retrievers_stages_in_order(demo_services: Services) -> None:
    from eval.cli import _context
    from eval.report import _context_md

    context = _context(demo_services, QUESTIONS)
    stages = context["default_stages"]
    assert stages[0] == "first" and stages.index("rerank") < stages.index("collapse")
    assert stages == list(demo_services.retriever.stages)  # type: ignore[attr-defined]
    assert f"- default stages: {' → '.join(stages)}" in _context_md({"questions": 1, **context})
