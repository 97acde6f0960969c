"""What an ingest run did, counted as it goes: a progress line while it runs, a summary at the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.loaders import LoadError
from ingest.plan import Outcome

_SHOWN_WARNINGS = 20


def progress_bar(done: float, seconds: float) -> tuple[str, float]:
    """A 20-character bar for the share ``done`` (0 to 1) of a job running ``seconds``, and its ETA in seconds."""
    eta = seconds * (1 - done) / done if 0 < done < 1 else 0.0
    return f"[{'#' * int(done * 20):<20}] {done:4.0%}", eta


@dataclass(slots=True)
class IngestReport:
    files: int = 0
    records: int = 0
    articles_new: int = 0
    articles_updated: int = 0
    articles_unchanged: int = 0
    duplicate_ids: int = 0  # the same id twice in this run: the first is kept
    exact_copies: int = 0  # same text as a stored article under another id: kept as a copy
    chunks_written: int = 0
    chunks_deleted: int = 0
    texts_embedded: int = 0
    articles_pruned: int = 0
    # Story clusters this run touched that hold more than one article: cluster id -> member ids.
    clusters: dict[str, list[str]] = field(default_factory=dict)
    # What happened to each article id of the run: "new", "updated", "unchanged" or "copy", and a detail.
    outcomes: dict[str, tuple[str, str]] = field(default_factory=dict)
    errors: list[LoadError] = field(default_factory=list)
    warnings: list[LoadError] = field(default_factory=list)
    bytes_total: int = 0
    bytes_done: int = 0
    seconds: float = 0.0

    @property
    def articles_stored(self) -> int:
        return self.articles_new + self.articles_updated

    @property
    def articles_seen(self) -> int:
        return self.articles_stored + self.articles_unchanged + self.exact_copies

    def stored(self) -> list[str]:
        """The articles this run wrote (new or with changed text): what saved questions are checked against."""
        return [i for i, (outcome, _) in self.outcomes.items() if outcome in ("new", "updated")]

    def count(self, article_id: str, outcome: Outcome, detail: str) -> None:
        """Record what became of an article, and count it under its outcome."""
        self.outcomes[article_id] = (outcome, detail)
        match outcome:
            case "new":
                self.articles_new += 1
            case "updated":
                self.articles_updated += 1
            case "unchanged":
                self.articles_unchanged += 1
            case "copy":
                self.exact_copies += 1

    def progress_line(self) -> str:
        """One line for a progress display: share of bytes read, articles, chunk rate, ETA."""
        rate = self.chunks_written / self.seconds if self.seconds else 0.0
        bar, eta = progress_bar(self.bytes_done / self.bytes_total if self.bytes_total else 0.0, self.seconds)
        return (
            f"{bar} articles {self.articles_seen} "
            f"(new {self.articles_new}, updated {self.articles_updated}, unchanged {self.articles_unchanged}), "
            f"chunks {self.chunks_written} ({rate:.1f}/s), errors {len(self.errors)}, ETA {eta:.0f}s"
        )

    def summary(self) -> str:
        rate = self.chunks_written / self.seconds if self.seconds else 0.0
        lines = [
            f"files {self.files}, records {self.records}, {self.seconds:.1f}s",
            f"articles: {self.articles_new} new, {self.articles_updated} updated, "
            f"{self.articles_unchanged} unchanged (not embedded again), {self.exact_copies} exact copies, "
            f"{self.duplicate_ids} repeated ids, {len(self.errors)} failed"
            + (f", {self.articles_pruned} pruned" if self.articles_pruned else ""),
            f"chunks: {self.chunks_written} written ({rate:.1f}/s), {self.chunks_deleted} removed; "
            f"{self.texts_embedded} texts embedded",
        ]
        if self.clusters:
            grouped = sum(len(m) for m in self.clusters.values())
            lines.append(f"story clusters: {len(self.clusters)} with several articles ({grouped} articles)")
            biggest = sorted(self.clusters.items(), key=lambda kv: -len(kv[1]))[:5]
            lines += [
                f"  {cid}: {len(m)} articles ({', '.join(m[:4])}{', ...' if len(m) > 4 else ''})" for cid, m in biggest
            ]
        # Every error is listed (each is a record that was not ingested); warnings can be thousands.
        lines += [f"warning: {w}" for w in self.warnings[:_SHOWN_WARNINGS]]
        if len(self.warnings) > _SHOWN_WARNINGS:
            lines.append(f"... and {len(self.warnings) - _SHOWN_WARNINGS} more warnings")
        lines += [f"error: {e}" for e in self.errors]
        return "\n".join(lines)


Progress = Callable[[IngestReport], None]
