"""``byline tune``: pairs from the archive, the held-out measure, and the command on the demo archive."""

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backend.embedding import SentenceTransformerEmbedder
from backend.services import build_services, build_store
from backend.settings import EmbeddingSettings, Settings
from ingest.pipeline import Ingestor
from ingest.tune import Pair, TuneError, archive_pairs, rank, split
from tests.conftest import DEMO

PAIRS = [Pair(f"a{i:02}", f"headline {i}", f"lead {i}") for i in range(30)]


def test_the_split_is_seeded_holds_out_a_share_and_keeps_two_pairs_to_train() -> None:
    train, held = split(PAIRS, max_pairs=20, held_out=0.1, seed=3)
    assert (len(train), len(held)) == (18, 2) and not {p.article_id for p in train} & {p.article_id for p in held}
    assert split(PAIRS, max_pairs=20, held_out=0.1, seed=3) == (train, held)
    assert split(PAIRS, max_pairs=20, held_out=0.1, seed=4) != (train, held)
    assert [len(part) for part in split(PAIRS[:4], max_pairs=10, held_out=0.5, seed=0)] == [2, 2]
    with pytest.raises(TuneError, match="at least 4"):
        split(PAIRS[:3], max_pairs=10, held_out=0.1, seed=0)


class _Lookup:
    """A model whose vectors are given: headline i points at lead ``points[i]``."""

    def __init__(self, points: dict[str, str]) -> None:
        self._points = points

    def encode(self, texts: Sequence[str], **_: Any) -> Any:
        leads = sorted({p.lead for p in PAIRS})
        return np.asarray([np.eye(len(leads))[leads.index(self._points.get(t, t))] for t in texts])


def test_rank_scores_each_headline_against_every_lead() -> None:
    queries = PAIRS[:4]
    model = _Lookup({"headline 0": "lead 0", "headline 1": "lead 1", "headline 2": "lead 9", "headline 3": "lead 3"})
    ranking = rank(model, queries, PAIRS)
    assert ranking.hit_at_1 == 0.75 and ranking.mrr == pytest.approx((1 + 1 + 1 / 2 + 1) / 4)


@pytest.mark.slow
def test_byline_tune_on_the_demo_archive_saves_a_model_and_reports_the_held_out_pairs(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    services = build_services(settings, embedder)
    Ingestor(settings, embedder, services.store, services.registry).ingest([DEMO])
    assert len(archive_pairs(services.store)) == 24
    env = {**os.environ, "BYLINE_DATA_DIR": str(settings.data_dir)}
    result = subprocess.run(
        [sys.executable, "-m", "byline", "tune", "--batch-size", "8", "--seed", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "on 22 headline -> lead pairs (1 epoch, batch 8, seed 1)" in out, out
    assert re.search(r"step 3/3, \d+ s", result.stderr), result.stderr  # 22 pairs in batches of 8: the last step shows
    assert "held out: 2 articles, each headline ranked against the leads of 24" in out
    assert re.search(r"stock\s+[01]\.\d{3}\s+[01]\.\d{3}", out) and re.search(r"tuned\s+[01]\.\d{3}\s+[01]\.\d{3}", out)
    saved = re.search(r"BYLINE_EMBEDDING__MODEL=(\S+)", out)
    assert saved and "byline reindex" in out
    path = Path(saved.group(1))
    assert path.parent == (settings.data_dir / "models").resolve() and path.name.startswith("tuned-")

    tuned = SentenceTransformerEmbedder(EmbeddingSettings(model=str(path)))
    assert path.name == f"tuned-{tuned.identity().weights}" and not tuned.identity().compatible(embedder.identity())
    vector = tuned.embed_query("Who commands the Qaratapa-Hamrin sector?")
    assert len(vector) == 384 and vector != embedder.embed_query("Who commands the Qaratapa-Hamrin sector?")
    assert build_store(settings).encoder == embedder.identity()  # the archive is left as it was
