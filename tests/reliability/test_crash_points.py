"""An ingest that dies between any two of its writes, then runs again, ends exactly as a clean run.

Random ``kill -9`` (``test_ingest_crash.py``) rarely lands in the narrow gaps between one batch's writes;
here each gap is hit on purpose: the run stops right after a store call returns (an exception that no
code of the run catches, so nothing after it happens), and a fresh run over fresh store objects repairs
it. The second ingest changes an article without changing its number of chunks, changes another's, adds
one and turns one into an exact copy of another: the cases where a repair that counts instead of
comparing, or a registry row removed before its chunks, would leave the archive wrong.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from backend.embedding import SentenceTransformerEmbedder
from backend.services import build_services
from backend.settings import IngestSettings, Settings
from backend.store.articles import ArticleRegistry
from backend.store.chroma import ChromaStore
from backend.store.lexical import LexicalIndex
from ingest.pipeline import Ingestor
from tests.reliability.conftest import write_jsonl


class Died(BaseException):
    """The process dying: a BaseException, so no ``except Exception`` of the run can swallow it."""


def _story(seed: int, sentences: int = 24, word: str = "sentence") -> str:
    rng = random.Random(seed)
    places = ["Harbor City", "Ardenvale", "Port Calder", "Baqubah", "Erbil", "Kirkuk"]
    things = ["a tram line", "flood defences", "a pay deal", "a water agreement", "joint patrols", "a museum"]
    return " ".join(
        f"Officials in {rng.choice(places)} approved {rng.choice(things)} on day {rng.randint(1, 300)} "
        f"of story {seed}, {word} {s}."
        for s in range(sentences)
    )


FIRST = [
    {"id": "same-count", "title": "Same count", "text": _story(1)},
    {"id": "new-count", "title": "New count", "text": _story(2)},
    {"id": "becomes-copy", "title": "Becomes a copy", "text": _story(3)},
    {"id": "original", "title": "Original", "text": _story(4)},
]
SECOND = [
    # Every chunk's text changes, the number of chunks does not.
    {"id": "same-count", "title": "Same count", "text": _story(1, word="line")},
    {"id": "new-count", "title": "New count", "text": _story(2, sentences=60)},
    {"id": "added", "title": "Added", "text": _story(5)},
    # Now the same text as "original": stored once, its own chunks must go.
    {"id": "becomes-copy", "title": "Becomes a copy", "text": _story(4)},
]

# (class, method): the run dies right after this call returns, at its first call in the second ingest.
POINTS = [
    (ChromaStore, "upsert"),
    (ChromaStore, "delete"),
    (LexicalIndex, "add"),
    (LexicalIndex, "delete"),
    (ArticleRegistry, "save"),
    (ArticleRegistry, "delete"),
]


def _settings(data: Path) -> Settings:
    return Settings(data_dir=data, ingest=IngestSettings(batch_articles=1))


def _ingest(data: Path, embedder: SentenceTransformerEmbedder, source: Path) -> None:
    settings = _settings(data)
    services = build_services(settings, embedder)
    Ingestor(settings, embedder, services.store, services.registry, services.lexical).ingest([source])


def _snapshot(data: Path, embedder: SentenceTransformerEmbedder) -> dict[str, Any]:
    services = build_services(_settings(data), embedder)
    chunks = {c.id: (c.article_id, c.position, c.cluster_id, c.text) for c in services.store.iter_chunks()}
    registry = services.registry
    records = registry.get(sorted(registry.ids()))
    return {
        "chunks": chunks,
        "lexical": services.lexical.ids(),
        "articles": {i: (r.content_hash, r.cluster_id, r.chunks) for i, r in records.items()},
        "copies": {a: sorted(c.copy_id for c in cs) for a, cs in registry.copies(sorted(records)).items()},
        "integrity": registry.integrity_ok(),
    }


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("crash-points")
    return write_jsonl(root / "first.jsonl", FIRST), write_jsonl(root / "second.jsonl", SECOND)


@pytest.fixture(scope="module")
def clean(
    sources: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder
) -> dict[str, Any]:
    data = tmp_path_factory.mktemp("clean") / "data"
    _ingest(data, embedder, sources[0])
    before = _snapshot(data, embedder)
    _ingest(data, embedder, sources[1])
    after = _snapshot(data, embedder)
    # The scenario holds: one article kept its number of chunks with every chunk new, one became a copy.
    assert before["articles"]["same-count"][2] == after["articles"]["same-count"][2]
    old = {c for c, v in before["chunks"].items() if v[0] == "same-count"}
    assert old.isdisjoint(c for c, v in after["chunks"].items() if v[0] == "same-count")
    assert "becomes-copy" not in after["articles"] and after["copies"]["original"] == ["becomes-copy"]
    return after


@pytest.mark.parametrize(("owner", "method"), POINTS, ids=[f"{c.__name__}.{m}" for c, m in POINTS])
def test_a_run_that_dies_right_after_a_store_write_is_repaired_by_the_next(
    owner: type,
    method: str,
    sources: tuple[Path, Path],
    clean: dict[str, Any],
    tmp_path: Path,
    embedder: SentenceTransformerEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = tmp_path / "data"
    _ingest(data, embedder, sources[0])
    original = getattr(owner, method)

    def dies_after(self: object, *args: Any, **kwargs: Any) -> Any:
        # Only a call that writes something counts (a batch without stale chunks deletes nothing).
        materialised = [list(a) if not isinstance(a, (str, bytes, list, tuple, dict)) else a for a in args]
        result = original(self, *materialised, **kwargs)
        if any(isinstance(a, (list, tuple)) and a for a in materialised):
            raise Died(f"died after {owner.__name__}.{method}")
        return result

    monkeypatch.setattr(owner, method, dies_after)
    with pytest.raises(Died):
        _ingest(data, embedder, sources[1])
    monkeypatch.undo()

    _ingest(data, embedder, sources[1])
    repaired = _snapshot(data, embedder)
    assert repaired["integrity"]
    assert repaired["lexical"] == set(repaired["chunks"]), "the BM25 and vector indexes disagree"
    assert repaired["chunks"] == clean["chunks"]
    assert repaired["articles"] == clean["articles"]
    assert repaired["copies"] == clean["copies"]
