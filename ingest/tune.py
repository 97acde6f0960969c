"""``byline tune``: the embedding model fine-tuned on the archive's own headlines and leads.

A headline is a question its article answers, so every article gives a training pair with no labelling:
the headline as the query, the article's first chunk as the passage that answers it. sentence-transformers'
trainer fits them with MultipleNegativesRankingLoss, which takes the other passages of a batch as wrong
answers (a batch never holds the same text twice). A share of the articles is held out, and each held-out
headline is ranked against the leads of every sampled article, by the stock model and by the tuned one.

The tuned model is saved under ``<data_dir>/models/tuned-<weights hash>/``. The archive is not touched: its
vectors are the stock model's, so the tuned one serves only after ``byline reindex`` (the server refuses
the mix). Needs the training extras (``pip install '.[tune]'``: datasets, accelerate); runs on the CPU.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.core.protocols import VectorStore
from backend.embedding import load_sentence_transformer, weights_hash
from backend.settings import Settings
from ingest.errors import TuneError as TuneError  # raised here; importable from here too


@dataclass(frozen=True, slots=True)
class Pair:
    article_id: str
    headline: str
    lead: str  # the article's first chunk


@dataclass(frozen=True, slots=True)
class Ranking:
    hit_at_1: float
    mrr: float


@dataclass(frozen=True, slots=True)
class TuneReport:
    base: str
    path: Path
    train_pairs: int
    held_out: int
    corpus: int
    epochs: int
    batch_size: int
    seed: int
    stock: Ranking
    tuned: Ranking
    seconds: float

    def summary(self) -> str:
        path = self.path.resolve()
        return "\n".join(
            [
                f"tuned {self.base} on {self.train_pairs} headline -> lead pairs ({self.epochs} epoch"
                f"{'s' * (self.epochs != 1)}, batch {self.batch_size}, seed {self.seed}) in {self.seconds:.1f}s",
                f"held out: {self.held_out} articles, each headline ranked against the leads of {self.corpus}",
                "           hit@1    MRR",
                f"  stock    {self.stock.hit_at_1:5.3f}  {self.stock.mrr:5.3f}",
                f"  tuned    {self.tuned.hit_at_1:5.3f}  {self.tuned.mrr:5.3f}",
                f"saved: {path}",
                f"to use it: BYLINE_EMBEDDING__MODEL={path}",
                "then run `byline reindex` with that setting: the archive's vectors are still the stock model's,"
                " and Byline refuses to serve them with another model",
            ]
        )


def archive_pairs(store: VectorStore) -> list[Pair]:
    """One pair per article with a headline: the headline and the article's first chunk, in article order.

    A headline that two articles share (a wire story run twice) is kept once: either lead would be right."""
    leads = sorted((c.article_id, c.title.strip(), c.text) for c in store.iter_chunks() if c.position == 0)
    pairs: list[Pair] = []
    seen: set[str] = set()
    for article_id, headline, lead in leads:
        if headline and lead.strip() and headline.casefold() not in seen:
            seen.add(headline.casefold())
            pairs.append(Pair(article_id, headline, lead))
    return pairs


def split(pairs: Sequence[Pair], max_pairs: int, held_out: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """A seeded sample of at most ``max_pairs`` articles, cut into training pairs and held-out ones."""
    sample = list(pairs)
    random.Random(seed).shuffle(sample)
    sample = sample[:max_pairs]
    if len(sample) < 4:
        raise TuneError(f"the archive has {len(sample)} articles with a headline; tuning needs at least 4")
    kept = min(len(sample) - 2, max(1, round(len(sample) * held_out)))  # in-batch negatives need two pairs
    return sample[kept:], sample[:kept]


def rank(model: Any, queries: Sequence[Pair], corpus: Sequence[Pair]) -> Ranking:
    """Each query's headline ranked against every lead of ``corpus``; its own article's lead is the answer."""
    encode: dict[str, Any] = {"normalize_embeddings": True, "convert_to_numpy": True, "show_progress_bar": False}
    asked = model.encode([p.headline for p in queries], **encode)
    leads = model.encode([p.lead for p in corpus], **encode)
    scores = asked @ leads.T
    where = {p.article_id: i for i, p in enumerate(corpus)}
    ranks = [1 + int((row > row[where[p.article_id]]).sum()) for row, p in zip(scores, queries, strict=True)]
    return Ranking(sum(r == 1 for r in ranks) / len(ranks), sum(1 / r for r in ranks) / len(ranks))


def tune(
    settings: Settings,
    store: VectorStore,
    *,
    epochs: int = 1,
    max_pairs: int = 2000,
    batch_size: int = 32,
    seed: int = 0,
    held_out: float = 0.1,
    say: Callable[[str], None] = lambda line: None,
) -> TuneReport:
    """Fine-tune the configured embedding model on ``store``'s articles; return what it measured and where it is."""
    try:
        from datasets import Dataset
        from sentence_transformers import (
            SentenceTransformerTrainer,
            SentenceTransformerTrainingArguments,
        )
        from sentence_transformers.base.sampler import BatchSamplers
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
        from transformers.trainer_callback import PrinterCallback, ProgressCallback, TrainerCallback
    except ImportError as exc:
        raise TuneError(f"tuning needs the training extras: pip install '.[tune]' ({exc})") from exc

    started = time.perf_counter()
    train, held = split(archive_pairs(store), max_pairs, held_out, seed)
    corpus = sorted([*train, *held], key=lambda p: p.article_id)
    model = load_sentence_transformer(settings.embedding.model, "cpu", settings.embedding.threads)
    stock = rank(model, held, corpus)
    say(f"training on {len(train)} pairs, {len(held)} held out ...")
    models = settings.data_dir / "models"
    models.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tune-", dir=models) as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch,
            num_train_epochs=epochs,
            per_device_train_batch_size=batch_size,
            learning_rate=2e-5,
            warmup_steps=0.1,  # a share of the steps
            seed=seed,
            data_seed=seed,
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            use_cpu=True,
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=True,
        )
        data = Dataset.from_dict({"anchor": [p.headline for p in train], "positive": [p.lead for p in train]})
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=data, loss=MultipleNegativesRankingLoss(model)
        )
        for printer in (PrinterCallback, ProgressCallback):  # they print a metrics dict on standard output
            trainer.remove_callback(printer)

        class Steps(TrainerCallback):
            """A progress line every 10 seconds and at the end: steps done, of all, and the time left."""

            shown = 0.0

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                now = time.perf_counter()
                if now - self.shown < 10 and state.global_step < state.max_steps:
                    return
                self.shown = now
                spent = now - train_started
                left = spent / max(state.global_step, 1) * (state.max_steps - state.global_step)
                say(f"step {state.global_step}/{state.max_steps}, {spent:.0f} s, about {left:.0f} s left")

        trainer.add_callback(Steps())
        train_started = time.perf_counter()
        trainer.train()
        partial = Path(scratch) / "model"
        model.save(str(partial))
        path = models / f"tuned-{weights_hash(partial)}"
        if path.exists():  # the same weights from an earlier run with the same settings
            shutil.rmtree(partial)
        else:
            partial.rename(path)
    tuned = rank(model, held, corpus)
    return TuneReport(
        base=settings.embedding.model,
        path=path,
        train_pairs=len(train),
        held_out=len(held),
        corpus=len(corpus),
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        stock=stock,
        tuned=tuned,
        seconds=time.perf_counter() - started,
    )
