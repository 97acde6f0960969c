"""One filter language: Chroma's ``where``, the BM25 index's mask and the Python check all agree with
``matches``, on generated archives and filters, against a real embedded Chroma and a real lexical index."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from backend.core.filters import matches
from backend.core.types import Chunk, SearchFilters, SearchQuery
from backend.store.chroma import ChromaStore, build_where, passes
from backend.store.lexical import LexicalIndex, _mask

DAYS = [date(2023, 3, 1) + timedelta(days=n) for n in range(6)]
# Seconds that sit on and next to day boundaries, where an off-by-one in a translation would show.
SECONDS = [0, 1, 43_200, 86_399]
OUTLETS = ["The Verge", "the-verge", "Reuters", "Wire", ""]

published = st.one_of(
    st.none(),
    st.builds(
        lambda day, second: datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=second),
        st.sampled_from(DAYS),
        st.sampled_from(SECONDS),
    ),
)
articles = st.lists(st.tuples(published, st.sampled_from(OUTLETS)), min_size=1, max_size=12)
queries = st.builds(
    lambda as_of, after, before, sources: SearchQuery(
        "q", as_of=as_of, filters=SearchFilters(sources=tuple(sources), published_after=after, published_before=before)
    ),
    st.one_of(st.none(), st.sampled_from(DAYS)),
    st.one_of(st.none(), st.sampled_from(DAYS)),
    st.one_of(st.none(), st.sampled_from(DAYS)),
    st.lists(st.sampled_from(["The Verge", "Reuters", "Ledger"]), max_size=2, unique=True),
)


def _chunks(generated: list[tuple[datetime | None, str]]) -> list[Chunk]:
    return [
        Chunk(id=f"a{n}:0", article_id=f"a{n}", position=0, text=f"word text {n}", title="word",
              source=source or None, published_at=when)
        for n, (when, source) in enumerate(generated)
    ]  # fmt: skip


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ChromaStore, LexicalIndex]]:
    root = tmp_path_factory.mktemp("filters")
    yield ChromaStore.embedded(root / "chroma", "filters"), LexicalIndex(root / "lexical.sqlite3")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=articles, query=queries)
# The last second of as_of's day, and an outlet named another way: always tried, whatever is drawn.
@example(
    generated=[(datetime(2023, 3, 1, 23, 59, 59, tzinfo=UTC), "the-verge"), (None, "")],
    query=SearchQuery("q", as_of=date(2023, 3, 1), filters=SearchFilters(sources=("The Verge",))),
)
def test_every_translation_of_the_filters_agrees_with_the_reference(
    stores: tuple[ChromaStore, LexicalIndex], generated: list[tuple[datetime | None, str]], query: SearchQuery
) -> None:
    store, lexical = stores
    store.delete([c.id for c in store.iter_chunks()])
    lexical.clear()
    chunks = _chunks(generated)
    store.upsert(chunks, [[1.0, float(n), 0.5] for n in range(len(chunks))], [{} for _ in chunks])
    lexical.add(chunks)

    expected = {c.id for c in chunks if matches(c.published_at, c.source, query)}
    assert {c.id for c in chunks if passes(c, query)} == expected
    where = build_where(query)
    found = store._collection.get(where=where) if where is not None else store._collection.get()
    assert set(found["ids"]) == expected, where
    snapshot = lexical._snapshot()
    mask = _mask(snapshot, query)
    assert {snapshot.ids[i] for i in range(snapshot.size) if mask[i]} == expected


def test_the_reference_on_the_edges() -> None:
    end_of_march_1 = datetime(2023, 3, 1, 23, 59, 59, tzinfo=UTC)
    assert matches(end_of_march_1, "Wire", SearchQuery("q", as_of=date(2023, 3, 1)))
    assert not matches(end_of_march_1 + timedelta(seconds=1), "Wire", SearchQuery("q", as_of=date(2023, 3, 1)))
    assert matches(None, "Wire", SearchQuery("q", as_of=date(2023, 3, 1)))  # undated passes as_of
    ranged = SearchQuery("q", filters=SearchFilters(published_after=date(2023, 3, 1)))
    assert not matches(None, "Wire", ranged)  # but never an explicit range
    outlets = SearchQuery("q", filters=SearchFilters(sources=("The Verge",)))
    assert matches(None, "the-verge", outlets) and not matches(None, None, outlets)


def test_the_judge_hides_later_articles_and_keeps_undated_ones() -> None:
    """The evaluation's judge cuts what a question may see at its as_of, as the stores do."""
    from eval.questions import Question
    from eval.runner import Judge

    judge = Judge.__new__(Judge)
    judge.url_to_article = {}
    question = Question(id="q", question="q", as_of=date(2023, 3, 1), answers=("word",))
    late, undated = _chunks([(datetime(2023, 3, 2, tzinfo=UTC), "Wire"), (None, "Wire")])
    assert not judge.matches(question, late) and judge.matches(question, undated)
