"""The pure plan of an ingest batch, against a model of the archive in plain dicts (no store, no model)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from ingest.plan import Incoming, plan_chunks, triage

_IDS = st.sampled_from([f"a{i}" for i in range(8)])
_KEYS = st.sampled_from(["k0", "k1", "k2", "k3"])  # few texts, so copies happen
_VERSIONS = st.sampled_from(["v0", "v1"])  # what else shapes the chunks: title, date, chunking settings


def _incoming() -> st.SearchStrategy[Incoming]:
    # A content hash covers the text: the same hash means the same text.
    return st.builds(lambda i, key, v: Incoming(i, key, f"{key}/{v}"), _IDS, _KEYS, _VERSIONS)


@dataclass
class Archive:
    """The registry's articles as the plan reads them: id -> content hash and id -> text key, in row order."""

    hashes: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    @property
    def owners(self) -> dict[str, str]:
        """``ArticleRegistry.by_text_hash``: for each text, an article stored with it."""
        return {key: article_id for article_id, key in self.texts.items()}


def _batch() -> st.SearchStrategy[list[Incoming]]:
    return st.lists(_incoming(), max_size=8, unique_by=lambda i: i.id)  # a run keeps the first of a repeated id


def _archive() -> st.SearchStrategy[Archive]:
    def build(stored: list[Incoming]) -> Archive:
        return Archive({i.id: i.digest for i in stored}, {i.id: i.text_key for i in stored})

    return _batch().map(build)


def _apply(archive: Archive, batch: list[Incoming]) -> None:
    """What the writes do to the registry: written articles are stored with their text, unlisted ones go."""
    plan = triage(batch, archive.hashes, archive.owners)
    by_id = {i.id: i for i in batch}
    for article_id in plan.unlist:
        del archive.hashes[article_id], archive.texts[article_id]
    for article_id in plan.to_write:
        archive.hashes[article_id] = by_id[article_id].digest
        archive.texts[article_id] = by_id[article_id].text_key


@given(_batch(), _archive())
def test_every_article_has_exactly_one_outcome(batch: list[Incoming], archive: Archive) -> None:
    plan = triage(batch, archive.hashes, archive.owners)
    sorted_ids = [*plan.unchanged, *plan.copies, *plan.to_write]
    assert sorted(sorted_ids) == sorted(i.id for i in batch)
    assert set(plan.unlist) <= set(plan.copies) & set(archive.hashes)
    assert all(owner != copy for copy, owner in plan.copies.items())
    assert set(plan.claimed.values()) == set(plan.to_write)


@given(_batch(), _archive())
def test_planning_again_after_applying_writes_nothing(batch: list[Incoming], archive: Archive) -> None:
    first = triage(batch, archive.hashes, archive.owners)
    _apply(archive, batch)
    again = triage(batch, archive.hashes, archive.owners)
    assert again.to_write == [] and again.unlist == []
    assert set(again.unchanged) == set(first.unchanged) | set(first.to_write)
    # A copy stays a copy, of an article stored with its text (which one, where several are, is the registry's).
    assert again.copies.keys() == first.copies.keys()
    keys = {i.id: i.text_key for i in batch}
    assert all(archive.texts[owner] == keys[copy] for copy, owner in again.copies.items())


@given(_batch(), _archive())
def test_the_plan_depends_only_on_its_input(batch: list[Incoming], archive: Archive) -> None:
    hashes, owners = dict(archive.hashes), dict(archive.owners)
    assert triage(batch, archive.hashes, archive.owners) == triage(batch, dict(reversed(hashes.items())), owners)
    assert (archive.hashes, archive.owners) == (hashes, owners)  # nothing read is changed


_CHUNKS = st.lists(st.sampled_from([f"c{i}" for i in range(10)]), unique=True, max_size=5)


@given(
    st.dictionaries(_IDS, _CHUNKS, max_size=5),
    st.dictionaries(_IDS, _CHUNKS, max_size=5),
    st.frozensets(_IDS),
    st.lists(_CHUNKS, max_size=3),
)
def test_stale_chunks_are_the_stored_ones_no_longer_cut(
    new: dict[str, list[str]], existing: dict[str, list[str]], stored: frozenset[str], copies: list[list[str]]
) -> None:
    # A chunk id starts with its article's id (``backend.core.text.chunk_id``): no two articles share one.
    new = {a: [f"{a}:{c}" for c in ids] for a, ids in new.items()}
    existing = {a: [f"{a}:{c}" for c in ids] for a, ids in existing.items()}
    copies = [[f"copy{n}:{c}" for c in ids] for n, ids in enumerate(copies)]
    plan = plan_chunks(new, stored, existing, copies)
    expected = [c for ids in copies for c in ids]
    expected += [c for a, ids in new.items() for c in existing.get(a, []) if c not in ids]
    assert plan.stale == expected
    assert list(plan.outcomes) == list(new)
    for article_id, outcome in plan.outcomes.items():
        assert (outcome == "updated") == (article_id in stored or bool(existing.get(article_id)))
    # Once written, the same cut leaves nothing stale and every article updated.
    after = {**existing, **new}
    again = plan_chunks(new, stored | set(new), after)
    assert again.stale == [] and set(again.outcomes.values()) <= {"updated"}
