"""``byline eval ...``: run a question set against the archive in the configured data directory."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from eval.questions import FRESH_DAYS, Question, QuestionSetError, load_questions

if TYPE_CHECKING:
    from backend.settings import AnswerSettings

app = typer.Typer(
    help="Measure retrieval and answers on a question set (its format: docs/evaluation.md).", no_args_is_help=True
)

DEFAULT_RETRIEVERS = ["dense", "bm25", "default"]


def _progress(label: str) -> Callable[[Iterable[Question]], Iterable[Question]]:
    """A tqdm bar; into a log (not a terminal) it writes an update every 10 seconds."""
    from tqdm import tqdm

    interval = 0.1 if sys.stderr.isatty() else 10.0

    def wrap(questions: Iterable[Question]) -> Iterable[Question]:
        bar: Iterable[Question] = tqdm(list(questions), desc=label, unit="q", file=sys.stderr, mininterval=interval)
        return bar

    return wrap


def _questions(path: Path) -> list[Question]:
    try:
        return load_questions(path)
    except (OSError, QuestionSetError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _context(services: Any, questions_path: Path) -> dict[str, Any]:
    import json

    settings = services.settings
    context: dict[str, Any] = {
        "question_set": str(questions_path),
        "data_dir": str(settings.data_dir),
        "archive": {"articles": services.registry.count(), "chunks": services.store.count()},
        "retriever_default": settings.retrieval.retriever,
    }
    # The default retriever's stages in order (news: first, brevity, time, outlets, rerank, ...), so a report
    # says what "default" was; a stage is measured on its own by switching its setting in a retriever spec.
    stages = getattr(services.retriever, "stages", None)
    if stages:
        context["default_stages"] = list(stages)
    description = settings.data_dir / "eval_slice.json"
    if description.exists():
        context["slice"] = json.loads(description.read_text(encoding="utf-8"))
    return context


@app.command()
def retrieval(
    questions: Annotated[Path, typer.Argument(help="Question set (JSONL).")],
    k: Annotated[int, typer.Option(min=1, max=100, help="Passages retrieved per question.")] = 10,
    retriever: Annotated[
        list[str] | None,
        typer.Option(
            "--retriever",
            help="Retriever by name, repeatable: dense, bm25, hybrid, news, default, tutorial (the"
            " LangChain-tutorial baseline); with settings changed as in news:time_mode=boost,rerank=false.",
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports/eval/retrieval"),
    rewrite: Annotated[
        bool, typer.Option(help="Rewrite follow-ups with their history (--no-rewrite measures without).")
    ] = True,
    fresh_days: Annotated[
        int,
        typer.Option(
            min=1, help="A question is 'fresh' when an article this many days or less before as_of holds its answer."
        ),
    ] = FRESH_DAYS,
) -> None:
    """Hit@k, recall, MRR, nDCG (passage and article level) and latency, retrievers side by side."""
    from backend.services import build_services, retrieval_settings
    from backend.settings import get_settings
    from eval.report import write_retrieval
    from eval.runner import evaluate_retrieval

    names = retriever or DEFAULT_RETRIEVERS
    settings = get_settings()
    for name in names:
        if name not in ("default", "tutorial"):
            try:
                retrieval_settings(name, settings.retrieval)
            except ValueError as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2) from exc
    items = _questions(questions)
    services = build_services(settings)
    rows = evaluate_retrieval(
        services,
        items,
        names,
        k,
        _progress("retrieval"),
        report=lambda line: typer.echo(line, err=True),
        rewrite=rewrite,
        fresh_days=fresh_days,
    )
    context = {**_context(services, questions), "k": k, "follow-ups rewritten": rewrite, "fresh_days": fresh_days}
    report = write_retrieval(rows, context, out)
    typer.echo((out / "report.md").read_text(encoding="utf-8"))
    typer.echo(
        f"report: {out}/report.md, report.json, report.png, per_question.jsonl ({report['questions']} questions)"
    )


def _answer_modes(spec: str | None, base: AnswerSettings) -> dict[str, AnswerSettings]:
    """``"short,quotes"``: the answer settings of each answerer, validated like environment settings."""
    from pydantic import ValidationError

    from backend.settings import AnswerSettings

    names = [m.strip() for m in (spec or base.mode).split(",") if m.strip()]
    if not names:
        raise ValueError("--modes names no answerer")
    modes = {}
    for name in dict.fromkeys(names):
        try:
            modes[name] = AnswerSettings.model_validate({**base.model_dump(), "mode": name})
        except ValidationError as exc:
            raise ValueError(f"unknown answer mode {name!r} in --modes {spec!r}") from exc
    return modes


@app.command()
def answers(
    questions: Annotated[Path, typer.Argument(help="Question set (JSONL).")],
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports/eval/answers"),
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N questions (a slow language model on a CPU).")
    ] = None,
    modes: Annotated[
        str | None,
        typer.Option(
            "--modes",
            help="Answerers compared on the same questions, comma-separated answer modes: short (the short-answer"
            " reader), quotes (quotes the best-supported sentences). Default: the configured BYLINE_ANSWER__MODE.",
        ),
    ] = None,
) -> None:
    """Accuracy, short-answer accuracy and calibration, citations, abstention and latency, by question type;
    several answerers side by side with paired tests."""
    from backend.embedding import build_embedder
    from backend.nlp import load_nlp
    from backend.services import build_services
    from backend.settings import get_settings
    from eval.report import write_answers
    from eval.runner import evaluate_answers

    settings = get_settings()
    try:
        answer_settings = _answer_modes(modes, settings.answer)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    items = _questions(questions)[:limit]
    # One embedding model for all; each answerer gets its own services (and query cache, so one does not warm
    # the other's latency). Embedded Chroma shares one system per path in a process, so reopening is safe.
    embedder = build_embedder(settings.embedding)
    answerers = {
        name: build_services(settings.model_copy(update={"answer": answer}), embedder)
        for name, answer in answer_settings.items()
    }
    first = next(iter(answerers.values()))
    rows = evaluate_answers(answerers, items, _progress("answers"), nlp=load_nlp())
    context = {
        **_context(first, questions),
        "llm provider": settings.llm.provider,
        "answer modes": list(answerers),
        "min_confidence": settings.answer.min_confidence,
    }
    report = write_answers(rows, {**context, "limit": limit} if limit else context, out)
    typer.echo((out / "report.md").read_text(encoding="utf-8"))
    typer.echo(
        f"report: {out}/report.md, report.json, report.png, reliability.png, per_question.jsonl"
        f" ({report['questions']} questions, {len(answerers)} answerer{'s' if len(answerers) > 1 else ''})"
    )


@app.command("fit-reader")
def fit_reader(
    questions: Annotated[Path, typer.Argument(help="Question set (JSONL) with answers and, ideally, choices.")],
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports/eval/reader"),
    l2: Annotated[float, typer.Option(min=0.0, help="L2 penalty of the logistic regression.")] = 3.0,
) -> None:
    """Fit the reader's feature weights on a question set; report cross-validated accuracy and what each
    feature earns. Prints the weights for backend/answering/reader.py; changes nothing by itself."""
    from backend.services import build_services
    from backend.settings import get_settings
    from eval.reader_fit import collect, fit, fit_markdown

    items = _questions(questions)
    services = build_services(get_settings())
    rows = collect(services, [q for q in items if q.answers], _progress("reading"))
    typer.echo("fitting (a cross-validation per feature)...", err=True)
    result = fit(rows, l2)
    out.mkdir(parents=True, exist_ok=True)
    markdown = fit_markdown(result, len(rows))
    (out / "report.md").write_text(markdown, encoding="utf-8")
    typer.echo(markdown)
