"""Each stage of the news retriever on its own, and the list the settings build."""

from dataclasses import replace
from datetime import date

import pytest

from backend.core.types import Chunk, DateWindow, Hit, SearchFilters, SearchQuery
from backend.retrieval.news import NewsRetriever, build_stages
from backend.retrieval.rerank import CheapReranker
from backend.retrieval.stages.base import Search
from backend.retrieval.stages.brevity import Brevity
from backend.retrieval.stages.collapse import Collapse
from backend.retrieval.stages.mmr import MMR
from backend.retrieval.stages.outlet_cap import OutletCap
from backend.retrieval.stages.outlet_lift import OutletLift
from backend.retrieval.stages.time_lift import TimeLift
from backend.settings import RetrievalSettings
from tests.backend.retrieval.test_news import Ranked, chunk


def search(
    k: int = 10, as_of: date | None = None, window: DateWindow | None = None, outlets: tuple[str, ...] = ()
) -> Search:
    return Search(SearchQuery("q", k=k, as_of=as_of), "q", SearchFilters(), window, outlets)


def hits(*chunks: Chunk) -> list[Hit]:
    """Equal scores: only the stage under test can order them (ties go by chunk id)."""
    return [Hit(c, 1.0) for c in chunks]


def ids(ranked: list[Hit]) -> list[str]:
    return [h.chunk.id for h in ranked]


DEFAULT = ("first", "brevity", "time", "outlets", "rerank", "collapse")


def test_the_default_settings_build_the_default_stages_in_order() -> None:
    stages = build_stages(RetrievalSettings(), CheapReranker())
    assert tuple(s.name for s in stages) == DEFAULT[1:]
    every = RetrievalSettings(per_outlet_cap=2, mmr_lambda=0.7)
    assert [s.name for s in build_stages(every, CheapReranker())] == [*DEFAULT[1:], "outlet_cap", "mmr"]


@pytest.mark.parametrize(
    ("off", "gone"),
    [
        ({"min_passage_words": 0}, "brevity"),
        ({"time_mode": "off", "recency_weight": 0}, "time"),
        ({"source_mode": "off"}, "outlets"),
        ({"rerank": False}, "rerank"),
        ({"collapse": False}, "collapse"),
    ],
)
def test_a_setting_turned_off_removes_its_stage_and_nothing_else(off: dict[str, object], gone: str) -> None:
    retriever = NewsRetriever(Ranked([]), Ranked([]), RetrievalSettings.model_validate(off), CheapReranker())
    assert retriever.stages == tuple(name for name in DEFAULT if name != gone)


def test_time_stays_while_either_of_its_lifts_is_on() -> None:
    names = [s.name for s in build_stages(RetrievalSettings(time_mode="off", recency_weight=0.5))]
    assert "time" in names and "rerank" not in names  # no reranker given: nothing to rerank with


def test_recency_orders_by_age_before_as_of() -> None:
    lift = TimeLift(RetrievalSettings(recency_weight=0.5, recency_half_life_days=30))
    lifted = lift.run(search(as_of=date(2023, 6, 10)), hits(chunk("a", 1), chunk("c", 9), chunk("b", 5)))
    assert ids(lifted) == ["c", "b", "a"]
    assert lifted[0].score > lifted[1].score > lifted[2].score > 1.0


def test_a_window_lifts_what_is_inside_it_and_recency_gives_way() -> None:
    lift = TimeLift(RetrievalSettings(time_boost=0.3, recency_weight=0.5))
    window = DateWindow(date(2023, 6, 1), date(2023, 6, 3))
    lifted = lift.run(search(as_of=date(2023, 6, 10), window=window), hits(chunk("late", 9), chunk("early", 2)))
    assert [(h.chunk.id, h.score) for h in lifted] == [("early", pytest.approx(1.3)), ("late", 1.0)]


def test_a_named_outlet_is_lifted_only_when_it_did_not_filter() -> None:
    candidates = hits(chunk("a", 1, "Wire"), chunk("b", 1, "The Verge"))
    assert ids(OutletLift(0.3).run(search(outlets=("The Verge",)), candidates)) == ["b", "a"]
    assert ids(OutletLift(0.3).run(search(), candidates)) == ["a", "b"]


def test_brevity_lowers_a_short_passage() -> None:
    long = replace(chunk("long", 1), text="word " * 40)
    ranked = Brevity(30).run(search(), hits(chunk("short", 1), long))
    assert ids(ranked) == ["long", "short"] and ranked[1].score < 1.0


def test_outlet_cap_caps_each_outlet_near_the_top() -> None:
    candidates = hits(*(chunk(f"w{i}", 1, "Wire") for i in range(3)), chunk("l1", 1, "Ledger"), chunk("w9", 1, "WIRE"))
    assert ids(OutletCap(1).run(search(), candidates)) == ["w0", "l1", "w1", "w2", "w9"]


def test_collapse_keeps_one_hit_per_article_and_story() -> None:
    candidates = hits(
        chunk("a1", 1, "Wire", article="a", cluster="s"),
        chunk("a2", 1, "Wire", article="a", cluster="s"),
        chunk("b1", 1, "Ledger", article="b", cluster="s"),
        chunk("c1", 1, "Ledger", article="c"),
        chunk("c2", 1, "Ledger", article="c"),
    )
    collapsed = Collapse().run(search(), candidates)
    assert ids(collapsed) == ["a1", "c1"]
    assert [h.also_in for h in collapsed] == [("Ledger",), ()]


def test_mmr_puts_a_different_text_before_a_near_copy() -> None:
    same = "the dam on the diyala river leaves farmers short of water"
    candidates = [
        Hit(replace(chunk("a", 1), text=same), 1.0),
        Hit(replace(chunk("b", 1), text=same + " again"), 0.95),
        Hit(replace(chunk("c", 1), text="the council approved flood defences"), 0.9),
    ]
    assert ids(MMR(1.0).run(search(k=3), candidates)) == ["a", "b", "c"]  # lambda 1: relevance only
    assert ids(MMR(0.5).run(search(k=3), candidates)) == ["a", "c", "b"]


def test_the_pipeline_runs_the_stages_in_order() -> None:
    # Collapse before the cap: the Wire story's second chunk is gone before the cap counts Wire's hits.
    chunks = [
        chunk("w1", 1, "Wire", article="w"),
        chunk("w2", 1, "Wire", article="w"),
        chunk("x1", 1, "Wire"),
        chunk("l1", 1, "Ledger"),
    ]
    settings = RetrievalSettings(rerank=False, fusion="rrf", min_passage_words=0, recency_weight=0, per_outlet_cap=1)
    retriever = NewsRetriever(Ranked(chunks), Ranked(chunks), settings)
    assert retriever.stages == ("first", "time", "outlets", "collapse", "outlet_cap")
    assert ids(retriever.retrieve(SearchQuery("q", k=3))) == ["w1", "l1", "x1"]


def test_an_empty_first_stage_gives_no_hits() -> None:
    retriever = NewsRetriever(
        Ranked([]), Ranked([]), RetrievalSettings(mmr_lambda=0.5, per_outlet_cap=1), CheapReranker()
    )
    assert retriever.retrieve(SearchQuery("q", as_of=date(2023, 6, 10))) == []


def test_first_stage_scores_against_the_best_candidate() -> None:
    retriever = NewsRetriever(
        Ranked([chunk("a", 1), chunk("b", 1)]),
        Ranked([]),
        RetrievalSettings(
            rerank=False, min_passage_words=0, recency_weight=0, time_mode="off", source_mode="off", collapse=False
        ),
    )
    assert retriever.stages == ("first",)
    ranked = retriever.retrieve(SearchQuery("q"))
    assert [h.score for h in ranked] == [1.0, 0.0]  # weighted fusion: min-max over each list
