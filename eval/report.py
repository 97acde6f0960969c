"""Reports: report.json (every number), report.md (tables with intervals), report.png, per_question.jsonl."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from eval.metrics import bootstrap_ci, paired_comparison, percentile
from eval.questions import FRESH_DAYS
from eval.runner import CURVE_K, AnswerRow, RetrievalRow

# Shown per question kind (eval.runner.question_kind): where the answer sits in the archive.
KIND_METRICS = ("article hit@5", "article mrr@10", "passage hit@5")
KIND_ORDER = ("fresh", "background", "undated")
HEADLINE = ("passage hit@5", "passage mrr@10", "passage ndcg@10", "article hit@5", "article mrr@10", "article ndcg@10")


def _question_json(row: RetrievalRow | AnswerRow) -> dict[str, Any]:
    q = asdict(row.question)
    q["as_of"] = q["as_of"].isoformat() if q["as_of"] else None
    return q


def retrieval_report(rows: Sequence[RetrievalRow], context: dict[str, Any]) -> dict[str, Any]:
    names = list(dict.fromkeys(r.retriever for r in rows))
    by_name = {n: [r for r in rows if r.retriever == n] for n in names}
    judged_ids = [r.question.id for r in by_name[names[0]] if r.metrics]
    metric_names = list(next((r.metrics for r in rows if r.metrics), {}))
    retrievers: dict[str, Any] = {}
    for name in names:
        judged = [r for r in by_name[name] if r.metrics]
        latencies = [r.latency_ms for r in by_name[name]]
        retrievers[name] = {
            "metrics": {m: bootstrap_ci([r.metrics[m] for r in judged]).as_dict() for m in metric_names},
            "hit_curve": [bootstrap_ci([r.curve[i] for r in judged]).as_dict() for i in range(CURVE_K)],
            "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "n": len(latencies)},
        }
    kinds = [k for k in KIND_ORDER if any(r.kind == k for r in rows)]
    by_kind = {
        kind: {
            "questions": sum(1 for r in by_name[names[0]] if r.metrics and r.kind == kind),
            "retrievers": {
                name: {
                    m: bootstrap_ci([r.metrics[m] for r in by_name[name] if r.metrics and r.kind == kind]).as_dict()
                    for m in KIND_METRICS
                    if m in metric_names
                }
                for name in names
            },
        }
        for kind in kinds
    }
    comparisons = []
    for a, b in itertools.combinations(names, 2):
        rows_a = {r.question.id: r for r in by_name[a] if r.metrics}
        rows_b = {r.question.id: r for r in by_name[b] if r.metrics}
        for metric in HEADLINE:
            if metric not in metric_names:
                continue
            cmp = paired_comparison(
                [rows_a[i].metrics[metric] for i in judged_ids], [rows_b[i].metrics[metric] for i in judged_ids]
            )
            comparisons.append(
                {"a": a, "b": b, "metric": metric, "difference": cmp.difference.as_dict(), "p_value": cmp.p_value,
                 "significant": cmp.significant}
            )  # fmt: skip
    return {
        "kind": "retrieval",
        "fresh_days": FRESH_DAYS,
        **context,
        "questions": len(by_name[names[0]]),
        "judged_questions": len(judged_ids),
        "no_relevant_in_archive": len(by_name[names[0]]) - len(judged_ids),
        "retrievers": retrievers,
        "by_kind": by_kind,
        "comparisons": comparisons,
    }


def answers_report(rows: Sequence[AnswerRow], context: dict[str, Any]) -> dict[str, Any]:
    metric_names = sorted({m for r in rows for m in r.metrics})
    latencies = [r.latency_ms for r in rows]
    return {
        "kind": "answers",
        **context,
        "questions": len(rows),
        "metrics": {m: bootstrap_ci([r.metrics[m] for r in rows if m in r.metrics]).as_dict() for m in metric_names},
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "n": len(latencies)},
    }


def _fmt(e: dict[str, float]) -> str:
    if e["n"] == 0 or math.isnan(e["mean"]):
        return "n/a"
    return f"{e['mean']:.3f} [{e['low']:.3f}, {e['high']:.3f}]"


def _context_md(report: dict[str, Any]) -> list[str]:
    lines = [f"- questions: {report['questions']}"]
    for key in ("question_set", "data_dir", "archive", "slice", "k", "retriever_default"):
        if key in report:
            value = report[key]
            lines.append(f"- {key.replace('_', ' ')}: {json.dumps(value) if isinstance(value, dict) else value}")
    return lines


def retrieval_markdown(report: dict[str, Any]) -> str:
    names = list(report["retrievers"])
    lines = ["# Retrieval evaluation", "", *_context_md(report)]
    lines += [
        f"- judged questions: {report['judged_questions']} "
        f"(and {report['no_relevant_in_archive']} with nothing relevant in the archive, left out)",
        "",
        "Means over judged questions with 95% bootstrap intervals; n is the number of questions.",
        "",
    ]
    metrics = list(report["retrievers"][names[0]]["metrics"])
    for level in ("passage", "article"):
        lines += [
            f"## {level.title()} level",
            "",
            "| metric | " + " | ".join(names) + " |",
            "|---" * (len(names) + 1) + "|",
        ]
        for metric in (m for m in metrics if m.startswith(level)):
            cells = [_fmt(report["retrievers"][n]["metrics"][metric]) for n in names]
            lines.append(f"| {metric.split(' ', 1)[1]} | " + " | ".join(cells) + " |")
        lines.append("")
    if report.get("by_kind"):
        lines += [
            "## By question kind",
            "",
            f"fresh: an article published in the {report['fresh_days']} days before as_of holds the answer (the"
            " news asked about, most likely). background: only older articles hold it, often in passing"
            " (relevance is judged by the answer string), so these numbers measure luck as much as retrieval."
            " undated: no as_of.",
            "",
            "| kind | n | metric | " + " | ".join(names) + " |",
            "|---" * (len(names) + 3) + "|",
        ]
        for kind, entry in report["by_kind"].items():
            for metric in KIND_METRICS:
                if metric in entry["retrievers"][names[0]]:
                    cells = [_fmt(entry["retrievers"][n][metric]) for n in names]
                    lines.append(f"| {kind} | {entry['questions']} | {metric} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Latency per query (ms)", "", "| retriever | p50 | p95 |", "|---|---|---|"]
    for n in names:
        latency = report["retrievers"][n]["latency_ms"]
        lines.append(f"| {n} | {latency['p50']:.1f} | {latency['p95']:.1f} |")
    if report["comparisons"]:
        lines += ["", "## Differences (paired sign-flip permutation test, p < 0.05 is significant)", "",
                  "| a - b | metric | difference [95% CI] | p | significant |", "|---|---|---|---|---|"]  # fmt: skip
        for c in report["comparisons"]:
            lines.append(
                f"| {c['a']} - {c['b']} | {c['metric']} | {_fmt(c['difference'])} | {c['p_value']:.4f} | "
                f"{'yes' if c['significant'] else 'no'} |"
            )
    return "\n".join(lines) + "\n"


def answers_markdown(report: dict[str, Any]) -> str:
    lines = ["# Answer evaluation", "", *_context_md(report), "", "| metric | mean [95% CI] | n |", "|---|---|---|"]
    for metric, e in report["metrics"].items():
        lines.append(f"| {metric} | {_fmt(e)} | {e['n']} |")
    lat = report["latency_ms"]
    lines += ["", f"Latency per answer: p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms."]
    return "\n".join(lines) + "\n"


def _plot_retrieval(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["retrievers"])
    kinds = list(report.get("by_kind", {}))
    panels = 3 if kinds else 2
    fig, axes = plt.subplots(
        1, panels, figsize=(13 + 4 * (panels - 2), 4.8), gridspec_kw={"width_ratios": [3, 2, 2][:panels]}
    )
    bars, curve = axes[0], axes[1]
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        metrics = report["retrievers"][name]["metrics"]
        values = [metrics[m]["mean"] for m in HEADLINE]
        errors = [
            [metrics[m]["mean"] - metrics[m]["low"] for m in HEADLINE],
            [metrics[m]["high"] - metrics[m]["mean"] for m in HEADLINE],
        ]
        bars.bar([x + i * width for x in range(len(HEADLINE))], values, width, yerr=errors, capsize=3, label=name)
        points = report["retrievers"][name]["hit_curve"]
        ks = range(1, len(points) + 1)
        curve.plot(ks, [p["mean"] for p in points], marker="o", label=name)
        curve.fill_between(ks, [p["low"] for p in points], [p["high"] for p in points], alpha=0.15)
    bars.set_xticks(
        [x + width * (len(names) - 1) / 2 for x in range(len(HEADLINE))], [m.replace(" ", "\n") for m in HEADLINE]
    )
    bars.set_ylim(0, 1)
    bars.set_title(f"Retrieval, {report['judged_questions']} judged questions (95% CI)")
    bars.legend()
    curve.set_xlabel("k")
    curve.set_ylabel("passage hit@k")
    curve.set_ylim(0, 1)
    curve.set_title("hit@k, k = 1..10")
    curve.legend()
    if kinds:
        _plot_kinds(report, names, kinds, axes[2], width)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_kinds(report: dict[str, Any], names: list[str], kinds: list[str], ax: Any, width: float) -> None:
    metric = "article hit@5"
    for i, name in enumerate(names):
        estimates = [report["by_kind"][k]["retrievers"][name].get(metric) for k in kinds]
        values = [e["mean"] if e and e["n"] else 0.0 for e in estimates]
        errors = [
            [e["mean"] - e["low"] if e and e["n"] else 0.0 for e in estimates],
            [e["high"] - e["mean"] if e and e["n"] else 0.0 for e in estimates],
        ]
        ax.bar([x + i * width for x in range(len(kinds))], values, width, yerr=errors, capsize=3, label=name)
    ax.set_xticks(
        [x + width * (len(names) - 1) / 2 for x in range(len(kinds))],
        [f"{k}\n(n={report['by_kind'][k]['questions']})" for k in kinds],
    )
    ax.set_ylim(0, 1)
    ax.set_title(f"{metric} by question kind")


def _plot_answers(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = report["metrics"]
    names = [m for m in metrics if metrics[m]["n"]]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    values = [metrics[m]["mean"] for m in names]
    errors = [
        [metrics[m]["mean"] - metrics[m]["low"] for m in names],
        [metrics[m]["high"] - metrics[m]["mean"] for m in names],
    ]
    ax.bar(names, values, yerr=errors, capsize=4, color="#4c72b0")
    for i, m in enumerate(names):
        ax.text(i, 0.02, f"n={metrics[m]['n']}", ha="center", color="white")
    ax.set_ylim(0, 1)
    ax.set_title(f"Answers, {report['questions']} questions (95% CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _write(out: Path, report: dict[str, Any], markdown: str, plot: Any, records: Iterable[dict[str, Any]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown, encoding="utf-8")
    plot(report, out / "report.png")
    with (out / "per_question.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(record) + "\n" for record in records)


def write_retrieval(rows: Sequence[RetrievalRow], context: dict[str, Any], out: Path) -> dict[str, Any]:
    report = retrieval_report(rows, context)
    records = (
        {
            "question": _question_json(r),
            "retriever": r.retriever,
            "query": r.query,
            "kind": r.kind,
            "latency_ms": r.latency_ms,
            "metrics": r.metrics,
            "retrieved": r.retrieved,
        }
        for r in rows
    )
    _write(out, report, retrieval_markdown(report), _plot_retrieval, records)
    return report


def write_answers(rows: Sequence[AnswerRow], context: dict[str, Any], out: Path) -> dict[str, Any]:
    report = answers_report(rows, context)
    records = (
        {
            "question": _question_json(r),
            "answer": r.answer,
            "rewritten_query": r.rewritten_query,
            "citations": r.citations,
            "latency_ms": r.latency_ms,
            "metrics": r.metrics,
        }
        for r in rows
    )
    _write(out, report, answers_markdown(report), _plot_answers, records)
    return report
