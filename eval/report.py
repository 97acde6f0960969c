"""Reports: report.json (every number), report.md (tables with intervals), report.png, per_question.jsonl."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from eval.metrics import (
    bootstrap_ci,
    expected_calibration_error,
    paired_comparison,
    percentile,
    reliability_bins,
)
from eval.questions import FRESH_DAYS
from eval.runner import ANSWER_STRING, CURVE_K, JUDGEMENTS, TOPICAL, AnswerRow, RetrievalRow

# Shown per question kind (eval.runner.question_kind): where the answer sits in the archive.
KIND_METRICS = ("article hit@5", "article mrr@10", "passage hit@5")
KIND_ORDER = ("fresh", "background", "undated")
# Answers: shown first, in this order; any other metric follows by name.
ANSWER_METRICS = (
    "accuracy",
    "short answer accuracy",
    "citation support",
    "citation validity",
    "abstention",
    "false abstention",
    "coverage when sure",
    "accuracy when sure",
    "degraded",
)
# Compared between answerers, paired by question, with the latency per answer.
MODE_COMPARED = ("accuracy", "short answer accuracy", "citation support", "false abstention")
LATENCY = "latency ms"
QUESTION_TYPES = ("who", "which/what", "where", "when", "how many", "other")
CALIBRATION_BINS = 10
# Compared between retrievers, paired by question, and plotted: article level first.
HEADLINE = (
    "article hit@1",
    "article hit@5",
    "article mrr@10",
    "article ndcg@10",
    "passage hit@5",
    "passage mrr@10",
    "passage ndcg@10",
)


def _question_json(row: RetrievalRow | AnswerRow) -> dict[str, Any]:
    q = asdict(row.question)
    q["as_of"] = q["as_of"].isoformat() if q["as_of"] else None
    return q


def retrieval_report(rows: Sequence[RetrievalRow], context: dict[str, Any]) -> dict[str, Any]:
    """Each judgement set (topical first, then answer string) reported apart; latency once per retriever."""
    names = list(dict.fromkeys(r.retriever for r in rows))
    sets = {
        judgement: _set_report([r for r in rows if r.judgement == judgement], names)
        for judgement in JUDGEMENTS
        if any(r.judgement == judgement for r in rows)
    }
    latency: dict[str, Any] = {}
    for name in names:
        once = {r.question.id: r.latency_ms for r in rows if r.retriever == name}  # a row per set, one retrieval
        values = list(once.values())
        latency[name] = {"p50": percentile(values, 50), "p95": percentile(values, 95), "n": len(values)}
    return {
        "kind": "retrieval",
        "fresh_days": FRESH_DAYS,
        **context,
        "questions": len({r.question.id for r in rows}),
        "retrievers": names,
        "latency_ms": latency,
        "sets": sets,
    }


def _set_report(rows: Sequence[RetrievalRow], names: Sequence[str]) -> dict[str, Any]:
    by_name = {n: [r for r in rows if r.retriever == n] for n in names}
    judged_ids = [r.question.id for r in by_name[names[0]] if r.metrics]
    metric_names = list(next((r.metrics for r in rows if r.metrics), {}))
    retrievers: dict[str, Any] = {}
    for name in names:
        judged = [r for r in by_name[name] if r.metrics]
        retrievers[name] = {
            "metrics": {m: bootstrap_ci([r.metrics[m] for r in judged]).as_dict() for m in metric_names},
            "hit_curve": [bootstrap_ci([r.curve[i] for r in judged]).as_dict() for i in range(CURVE_K)],
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
        "questions": len(by_name[names[0]]),
        "judged_questions": len(judged_ids),
        "no_relevant_in_archive": len(by_name[names[0]]) - len(judged_ids),
        "retrievers": retrievers,
        "by_kind": by_kind,
        "comparisons": comparisons,
    }


def _answer_metric_names(rows: Sequence[AnswerRow]) -> list[str]:
    present = {m for r in rows for m in r.metrics}
    return [m for m in ANSWER_METRICS if m in present] + sorted(present - set(ANSWER_METRICS))


def _estimates(rows: Sequence[AnswerRow], names: Sequence[str]) -> dict[str, dict[str, float | int]]:
    return {m: bootstrap_ci([r.metrics[m] for r in rows if m in r.metrics]).as_dict() for m in names}


def _number(value: float) -> float | None:
    """JSON has no NaN: an undefined figure (an empty bin, no answers) is null."""
    return None if math.isnan(value) else value


def calibration_report(rows: Sequence[AnswerRow], bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """How far the short answers' confidence can be trusted, over those whose correctness is known."""
    judged = [r for r in rows if r.confidence is not None and r.short_correct is not None]
    confidences = [r.confidence for r in judged if r.confidence is not None]
    right = [bool(r.short_correct) for r in judged]
    return {
        "short_answers": sum(1 for r in rows if r.short_answer is not None),
        "judged": len(judged),
        "min_confidence": rows[0].min_confidence if rows else None,  # one answerer's rows share its settings
        "mean_confidence": bootstrap_ci(confidences).as_dict(),
        "accuracy": bootstrap_ci([float(c) for c in right]).as_dict(),
        "ece": _number(expected_calibration_error(confidences, right, bins)),
        "bins": [
            {
                "low": b.low,
                "high": b.high,
                "count": b.count,
                "confidence": _number(b.confidence),
                "accuracy": _number(b.accuracy),
            }
            for b in reliability_bins(confidences, right, bins)
        ],
        **_estimates(rows, ("coverage when sure", "accuracy when sure")),
    }


def _mode_report(rows: Sequence[AnswerRow], names: Sequence[str]) -> dict[str, Any]:
    latencies = [r.latency_ms for r in rows]
    present = {r.question_type for r in rows}
    types = [t for t in QUESTION_TYPES if t in present] + sorted(present - set(QUESTION_TYPES))
    return {
        "metrics": _estimates(rows, names),
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "n": len(latencies)},
        "by_question_type": {
            t: {
                "questions": sum(1 for r in rows if r.question_type == t),
                "metrics": _estimates([r for r in rows if r.question_type == t], names),
            }
            for t in types
        },
        "calibration": calibration_report(rows),
    }


def _mode_comparisons(by_mode: dict[str, list[AnswerRow]]) -> list[dict[str, Any]]:
    """Each pair of answerers on the questions both have a figure for (citation support needs citations)."""
    comparisons = []
    for a, b in itertools.combinations(by_mode, 2):
        rows_b = {r.question.id: r for r in by_mode[b]}
        pairs = [(r, rows_b[r.question.id]) for r in by_mode[a] if r.question.id in rows_b]
        for metric in (*MODE_COMPARED, LATENCY):
            if metric == LATENCY:
                values = [(x.latency_ms, y.latency_ms) for x, y in pairs]
            else:
                values = [
                    (x.metrics[metric], y.metrics[metric])
                    for x, y in pairs
                    if metric in x.metrics and metric in y.metrics
                ]
            if not values:
                continue
            cmp = paired_comparison([x for x, _ in values], [y for _, y in values])
            comparisons.append(
                {"a": a, "b": b, "metric": metric, "difference": cmp.difference.as_dict(), "p_value": cmp.p_value,
                 "significant": cmp.significant}
            )  # fmt: skip
    return comparisons


def answers_report(rows: Sequence[AnswerRow], context: dict[str, Any]) -> dict[str, Any]:
    """Each answerer's figures overall, by question type and for calibration, then the pairs compared.

    The first mode in ``rows`` is the configured one; a question set asked of one answerer has one mode.
    """
    modes = list(dict.fromkeys(r.mode for r in rows))
    by_mode = {m: [r for r in rows if r.mode == m] for m in modes}
    names = _answer_metric_names(rows)
    first = by_mode[modes[0]]
    types: dict[str, int] = {}
    for r in first:
        types[r.question_type] = types.get(r.question_type, 0) + 1
    return {
        "kind": "answers",
        **context,
        "questions": len(first),
        "question_types": {
            t: types[t] for t in [*QUESTION_TYPES, *sorted(set(types) - set(QUESTION_TYPES))] if t in types
        },
        "modes": {m: _mode_report(by_mode[m], names) for m in modes},
        "comparisons": _mode_comparisons(by_mode),
    }


def _fmt(e: dict[str, float], digits: int = 3) -> str:
    if e["n"] == 0 or math.isnan(e["mean"]):
        return "n/a"
    return f"{e['mean']:.{digits}f} [{e['low']:.{digits}f}, {e['high']:.{digits}f}]"


def _context_md(report: dict[str, Any]) -> list[str]:
    lines = [f"- questions: {report['questions']}"]
    keys = ("question_set", "data_dir", "archive", "slice", "k", "retriever_default", "default_stages", "llm provider")
    for key in (*keys, "limit"):
        if key in report:
            value = report[key]
            shown = (
                " → ".join(value)
                if isinstance(value, list)
                else json.dumps(value)
                if isinstance(value, dict)
                else value
            )
            lines.append(f"- {key.replace('_', ' ')}: {shown}")
    return lines


SET_TITLES = {
    TOPICAL: "Topical set: judged by the articles labelled as about the question (`relevant`)",
    ANSWER_STRING: "Answer-string set: a passage is relevant when it holds an answer string",
}


def retrieval_markdown(report: dict[str, Any]) -> str:
    names = list(report["retrievers"])
    lines = ["# Retrieval evaluation", "", *_context_md(report), ""]
    lines += [
        "Means over judged questions with 95% bootstrap intervals; n is the number of questions. Each set"
        " is judged on its own questions; article level first (a reader sees one passage per article).",
        "",
    ]
    for judgement, entry in report["sets"].items():
        lines += _set_markdown(SET_TITLES.get(judgement, judgement), entry, names, report["fresh_days"])
    lines += ["## Latency per query (ms)", "", "| retriever | p50 | p95 |", "|---|---|---|"]
    for n in names:
        latency = report["latency_ms"][n]
        lines.append(f"| {n} | {latency['p50']:.1f} | {latency['p95']:.1f} |")
    return "\n".join(lines) + "\n"


def _set_markdown(title: str, entry: dict[str, Any], names: Sequence[str], fresh_days: int) -> list[str]:
    lines = [
        f"## {title}",
        "",
        f"- judged questions: {entry['judged_questions']} "
        f"(and {entry['no_relevant_in_archive']} with nothing relevant in the archive, left out)",
        "",
    ]
    metrics = list(entry["retrievers"][names[0]]["metrics"])
    for level in ("article", "passage"):
        lines += [f"### {level.title()} level", "", "| metric | " + " | ".join(names) + " |"]
        lines.append("|---" * (len(names) + 1) + "|")
        for metric in (m for m in metrics if m.startswith(level)):
            cells = [_fmt(entry["retrievers"][n]["metrics"][metric]) for n in names]
            lines.append(f"| {metric.split(' ', 1)[1]} | " + " | ".join(cells) + " |")
        lines.append("")
    if entry.get("by_kind"):
        lines += [
            "### By question kind",
            "",
            f"fresh: an article published in the {fresh_days} days before as_of is relevant (the news asked"
            " about, most likely). background: only older articles are; where the answer string judges, these"
            " are often articles that name it in passing, so their numbers measure luck as much as retrieval."
            " undated: no as_of.",
            "",
            "| kind | n | metric | " + " | ".join(names) + " |",
            "|---" * (len(names) + 3) + "|",
        ]
        for kind, by_kind in entry["by_kind"].items():
            for metric in KIND_METRICS:
                if metric in by_kind["retrievers"][names[0]]:
                    cells = [_fmt(by_kind["retrievers"][n][metric]) for n in names]
                    lines.append(f"| {kind} | {by_kind['questions']} | {metric} | " + " | ".join(cells) + " |")
        lines.append("")
    if entry["comparisons"]:
        lines += ["### Differences (paired sign-flip permutation test, p < 0.05 is significant)", "",
                  "| a - b | metric | difference [95% CI] | p | significant |", "|---|---|---|---|---|"]  # fmt: skip
        for c in entry["comparisons"]:
            lines.append(
                f"| {c['a']} - {c['b']} | {c['metric']} | {_fmt(c['difference'])} | {c['p_value']:.4f} | "
                f"{'yes' if c['significant'] else 'no'} |"
            )
        lines.append("")
    return lines


def _cell(e: dict[str, float]) -> str:
    return "n/a" if e["n"] == 0 or math.isnan(e["mean"]) else f"{_fmt(e)} n={e['n']}"


def _table(header: Sequence[str]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]


def _calibration_md(report: dict[str, Any]) -> list[str]:
    modes = report["modes"]
    lines = [
        "## Calibration of the short answers",
        "",
        "Over short answers whose correctness is known (a question with gold strings, or one the archive"
        " cannot answer, where any short answer is wrong). ECE: the count-weighted mean gap between"
        " confidence and accuracy over 10 equal-width confidence bins (0 is perfectly calibrated). Sure:"
        " confidence at least min_confidence; coverage is over every question with a verdict.",
        "",
        *_table(
            [
                "mode",
                "short answers (judged)",
                "mean confidence",
                "accuracy",
                "ECE",
                "min confidence",
                "coverage when sure",
                "accuracy when sure",
            ]
        ),
    ]
    for mode, entry in modes.items():
        c = entry["calibration"]
        ece = "n/a" if c["ece"] is None else f"{c['ece']:.3f}"
        lines.append(
            f"| {mode} | {c['short_answers']} ({c['judged']}) | {_cell(c['mean_confidence'])} | {_cell(c['accuracy'])}"
            f" | {ece} | {c['min_confidence']} | {_cell(c['coverage when sure'])} | {_cell(c['accuracy when sure'])} |"
        )
    calibrated = [m for m in modes if modes[m]["calibration"]["judged"]]
    lines.append("")
    if not calibrated:
        lines += ["No answerer gave a short answer that could be judged: nothing to calibrate.", ""]
    else:
        lines += ["Reliability: per confidence bin, the answers in it (n), their mean confidence and accuracy.", ""]
        header = ["confidence"] + [f"{m}: {x}" for m in calibrated for x in ("n", "mean confidence", "accuracy")]
        lines += _table(header)
        bins = modes[calibrated[0]]["calibration"]["bins"]
        for i, edge in enumerate(bins):
            cells = [f"[{edge['low']:.1f}, {edge['high']:.1f}{']' if i == len(bins) - 1 else ')'}"]
            for m in calibrated:
                b = modes[m]["calibration"]["bins"][i]
                if b["count"]:
                    cells += [str(b["count"]), f"{b['confidence']:.3f}", f"{b['accuracy']:.3f}"]
                else:
                    cells += ["0", "", ""]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return [*lines, "![Reliability: accuracy by confidence bin](reliability.png)", ""]


def answers_markdown(report: dict[str, Any]) -> str:
    modes = list(report["modes"])
    first = report["modes"][modes[0]]
    lines = ["# Answer evaluation", "", *_context_md(report)]
    lines += [
        f"- answerers (answer.mode): {', '.join(modes)}",
        "- question types: " + ", ".join(f"{t} {n}" for t, n in report["question_types"].items()),
        "",
        "Means with 95% bootstrap intervals; n is the number of questions behind each. Short answer accuracy:"
        " the short answer names a gold answer (contains it, or is most of it) and no other choice; no short"
        " answer counts as wrong.",
        "",
        "## Metrics",
        "",
        *_table(["metric", *modes]),
    ]
    for metric in first["metrics"]:
        lines.append(f"| {metric} | " + " | ".join(_cell(report["modes"][m]["metrics"][metric]) for m in modes) + " |")
    latency = [report["modes"][m]["latency_ms"] for m in modes]
    lines.append("| latency p50 / p95 (ms) | " + " | ".join(f"{x['p50']:.0f} / {x['p95']:.0f}" for x in latency) + " |")
    lines += [
        "",
        "![Answer metrics](report.png)",
        "",
        "## By question type",
        "",
        "The question's kind as the answerer's question analysis reads it (its question word).",
        "",
        *_table(["type", "n", "metric", *modes]),
    ]
    for qtype, entry in first["by_question_type"].items():
        for metric in first["metrics"]:
            cells = [_cell(report["modes"][m]["by_question_type"][qtype]["metrics"][metric]) for m in modes]
            if all(c == "n/a" for c in cells):
                continue
            lines.append(f"| {qtype} | {entry['questions']} | {metric} | " + " | ".join(cells) + " |")
    lines += ["", *_calibration_md(report)]
    if report["comparisons"]:
        lines += [
            "## Differences between answerers (paired sign-flip permutation test, p < 0.05 is significant)",
            "",
            *_table(["a - b", "metric", "difference [95% CI]", "n", "p", "significant"]),
        ]
        for c in report["comparisons"]:
            lines.append(
                f"| {c['a']} - {c['b']} | {c['metric']} | {_fmt(c['difference'], 1 if c['metric'] == LATENCY else 3)}"
                f" | {c['difference']['n']} | "
                f"{c['p_value']:.4f} | {'yes' if c['significant'] else 'no'} |"
            )
    return "\n".join(lines) + "\n"


def _plot_retrieval(report: dict[str, Any], path: Path) -> None:
    """One row of panels per judgement set: headline metrics, the hit@k curve, article hit@5 by kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["retrievers"])
    sets = list(report["sets"].items())
    fig, axes = plt.subplots(
        len(sets), 3, figsize=(17, 4.8 * len(sets)), gridspec_kw={"width_ratios": [3, 2, 2]}, squeeze=False
    )
    width = 0.8 / len(names)
    for row, (judgement, entry) in zip(axes, sets, strict=True):
        bars, curve, by_kind = row
        shown = [m for m in HEADLINE if m in entry["retrievers"][names[0]]["metrics"]]
        for i, name in enumerate(names):
            metrics = entry["retrievers"][name]["metrics"]
            values = [metrics[m]["mean"] for m in shown]
            errors = [
                [metrics[m]["mean"] - metrics[m]["low"] for m in shown],
                [metrics[m]["high"] - metrics[m]["mean"] for m in shown],
            ]
            bars.bar([x + i * width for x in range(len(shown))], values, width, yerr=errors, capsize=3, label=name)
            points = entry["retrievers"][name]["hit_curve"]
            ks = range(1, len(points) + 1)
            curve.plot(ks, [p["mean"] for p in points], marker="o", label=name)
            curve.fill_between(ks, [p["low"] for p in points], [p["high"] for p in points], alpha=0.15)
        bars.set_xticks(
            [x + width * (len(names) - 1) / 2 for x in range(len(shown))], [m.replace(" ", "\n") for m in shown]
        )
        bars.set_ylim(0, 1)
        bars.set_title(f"{judgement}: {entry['judged_questions']} judged questions (95% CI)")
        bars.legend(fontsize="small")
        curve.set_xlabel("k")
        curve.set_ylabel("passage hit@k")
        curve.set_ylim(0, 1)
        curve.set_title(f"{judgement}: passage hit@k, k = 1..10")
        curve.legend(fontsize="small")
        kinds = list(entry.get("by_kind", {}))
        if kinds:
            _plot_kinds(entry, names, kinds, by_kind, width)
        else:
            by_kind.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_kinds(entry: dict[str, Any], names: list[str], kinds: list[str], ax: Any, width: float) -> None:
    metric = "article hit@5"
    for i, name in enumerate(names):
        estimates = [entry["by_kind"][k]["retrievers"][name].get(metric) for k in kinds]
        values = [e["mean"] if e and e["n"] else 0.0 for e in estimates]
        errors = [
            [e["mean"] - e["low"] if e and e["n"] else 0.0 for e in estimates],
            [e["high"] - e["mean"] if e and e["n"] else 0.0 for e in estimates],
        ]
        ax.bar([x + i * width for x in range(len(kinds))], values, width, yerr=errors, capsize=3, label=name)
    ax.set_xticks(
        [x + width * (len(names) - 1) / 2 for x in range(len(kinds))],
        [f"{k}\n(n={entry['by_kind'][k]['questions']})" for k in kinds],
    )
    ax.set_ylim(0, 1)
    ax.set_title(f"{metric} by question kind")


def _plot_answers(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(report["modes"])
    names = [
        m for m in report["modes"][modes[0]]["metrics"] if any(report["modes"][x]["metrics"][m]["n"] for x in modes)
    ]
    fig, ax = plt.subplots(figsize=(max(8.0, 1.1 * len(names) * len(modes) + 2), 4.8))
    width = 0.8 / len(modes)
    for i, mode in enumerate(modes):
        metrics = report["modes"][mode]["metrics"]
        shown = [metrics[m] if metrics[m]["n"] else None for m in names]
        values = [e["mean"] if e else 0.0 for e in shown]
        errors = [
            [e["mean"] - e["low"] if e else 0.0 for e in shown],
            [e["high"] - e["mean"] if e else 0.0 for e in shown],
        ]
        xs = [x + i * width for x in range(len(names))]
        ax.bar(xs, values, width, yerr=errors, capsize=3, label=mode)
        for x, e in zip(xs, shown, strict=True):
            ax.text(x, 0.02, f"n={e['n']}" if e else "n/a", ha="center", fontsize=7, rotation=90, color="black")
    ax.set_xticks([x + width * (len(modes) - 1) / 2 for x in range(len(names))], [m.replace(" ", "\n") for m in names])
    ax.set_ylim(0, 1)
    ax.set_title(f"Answers, {report['questions']} questions (95% CI)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_reliability(report: dict[str, Any], path: Path) -> None:
    """Accuracy by confidence bin against the diagonal, and how many answers each bin holds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [m for m in report["modes"] if report["modes"][m]["calibration"]["judged"]]
    fig, (curve, counts) = plt.subplots(2, 1, figsize=(6.5, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    curve.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    width = 0.1 / max(1, len(modes))
    for i, mode in enumerate(modes):
        c = report["modes"][mode]["calibration"]
        filled = [b for b in c["bins"] if b["count"]]
        line = curve.plot(
            [b["confidence"] for b in filled],
            [b["accuracy"] for b in filled],
            marker="o",
            label=f"{mode} (ECE {c['ece']:.3f}, n={c['judged']})",
        )
        for b in filled:
            curve.annotate(
                str(b["count"]),
                (b["confidence"], b["accuracy"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
                color=line[0].get_color(),
            )
        counts.bar(
            [b["low"] + (i + 0.5) * width for b in c["bins"]],
            [b["count"] for b in c["bins"]],
            width,
            color=line[0].get_color(),
        )
    if not modes:
        curve.text(0.5, 0.5, "no short answers to judge", ha="center", va="center")
    threshold = next((report["modes"][m]["calibration"]["min_confidence"] for m in report["modes"]), None)
    if threshold is not None:
        for ax in (curve, counts):
            ax.axvline(threshold, color="black", linewidth=0.8, linestyle=":")
    curve.set_xlim(0, 1)
    curve.set_ylim(-0.03, 1.08)  # room for the counts written above the points at 0 and 1
    curve.set_ylabel("accuracy of the short answers")
    curve.set_title("Reliability: accuracy by confidence bin (10 bins)")
    curve.legend(loc="upper left", fontsize=8)
    counts.set_xlabel("confidence (dotted: min_confidence)")
    counts.set_ylabel("answers")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _write(
    out: Path, report: dict[str, Any], markdown: str, plots: dict[str, Any], records: Iterable[dict[str, Any]]
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown, encoding="utf-8")
    for name, plot in plots.items():
        plot(report, out / name)
    with (out / "per_question.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(record) + "\n" for record in records)


def write_retrieval(rows: Sequence[RetrievalRow], context: dict[str, Any], out: Path) -> dict[str, Any]:
    report = retrieval_report(rows, context)
    records = (
        {
            "question": _question_json(r),
            "retriever": r.retriever,
            "judgement": r.judgement,
            "query": r.query,
            "kind": r.kind,
            "latency_ms": r.latency_ms,
            "metrics": r.metrics,
            "retrieved": r.retrieved,
        }
        for r in rows
    )
    _write(out, report, retrieval_markdown(report), {"report.png": _plot_retrieval}, records)
    return report


def write_answers(rows: Sequence[AnswerRow], context: dict[str, Any], out: Path) -> dict[str, Any]:
    """One per_question.jsonl line per question, each answerer's answer side by side."""
    report = answers_report(rows, context)
    by_question: dict[str, list[AnswerRow]] = {}
    for r in rows:
        by_question.setdefault(r.question.id, []).append(r)
    records = (
        {
            "question": _question_json(group[0]),
            "question_type": group[0].question_type,
            "modes": {
                r.mode: {
                    "answer": r.answer,
                    "short_answer": r.short_answer,
                    "confidence": r.confidence,
                    "short_correct": r.short_correct,
                    "rewritten_query": r.rewritten_query,
                    "citations": r.citations,
                    "latency_ms": r.latency_ms,
                    "metrics": r.metrics,
                }
                for r in group
            },
        }
        for group in by_question.values()
    )
    plots = {"report.png": _plot_answers, "reliability.png": _plot_reliability}
    _write(out, report, answers_markdown(report), plots, records)
    return report
