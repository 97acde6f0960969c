"""The default retriever: an ordered list of stages built from the settings.

1. First stage: dense and BM25 candidates, fused (RRF or weighted sum); a window or outlet read from the
   question filters them where the settings say so (``stages/first.py``).
2. Brevity: short passages score less (``stages/brevity.py``).
3. Lifts: candidates in the question's window, or without one those published shortly before ``as_of``
   (``stages/time_lift.py``); those of an outlet the question names (``stages/outlet_lift.py``).
4. Second stage: a reranker over the top candidates, our cheap one or a cross-encoder (``stages/rerank.py``).
5. Collapse: one hit per article and per wire story, the other outlets reported as ``also_in``
   (``stages/collapse.py``); then an optional per-outlet cap and MMR for variety.

A stage its setting switches off is absent from the list, so the evaluation suite measures each one by
turning its setting off (``news:rerank=false``); ``NewsRetriever.stages`` names those that run. A new
stage is a file under ``stages/``, a setting, and a line in ``build_stages``.
"""

from __future__ import annotations

from concurrent.futures import Executor

from backend.core.protocols import ArticleStore, Retriever
from backend.core.types import Hit, SearchQuery
from backend.retrieval.rerank import Reranker
from backend.retrieval.stages.base import Stage
from backend.retrieval.stages.brevity import Brevity
from backend.retrieval.stages.collapse import Collapse
from backend.retrieval.stages.first import FirstStage
from backend.retrieval.stages.mmr import MMR
from backend.retrieval.stages.outlet_cap import OutletCap
from backend.retrieval.stages.outlet_lift import OutletLift
from backend.retrieval.stages.rerank import Rerank
from backend.retrieval.stages.time_lift import TimeLift
from backend.settings import RetrievalSettings


def build_stages(
    settings: RetrievalSettings, reranker: Reranker | None = None, registry: ArticleStore | None = None
) -> list[Stage]:
    """The stages after the first, in order; those the settings turn off are left out."""
    s = settings
    candidates: list[Stage | None] = [
        Brevity(s.min_passage_words) if s.min_passage_words else None,
        TimeLift(s) if s.time_mode != "off" or s.recency_weight else None,
        OutletLift(s.source_boost) if s.source_mode != "off" else None,
        Rerank(reranker, s) if s.rerank and reranker is not None else None,
        Collapse(registry) if s.collapse else None,
        OutletCap(s.per_outlet_cap) if s.per_outlet_cap else None,
        MMR(s.mmr_lambda) if s.mmr_lambda is not None else None,
    ]
    return [stage for stage in candidates if stage is not None]


class NewsRetriever:
    def __init__(
        self,
        dense: Retriever,
        lexical: Retriever,
        settings: RetrievalSettings,
        reranker: Reranker | None = None,
        registry: ArticleStore | None = None,
        pool: Executor | None = None,
    ) -> None:
        """``pool``: the services' worker threads, where BM25 runs while the question embeds."""
        self._first = FirstStage(dense, lexical, settings, pool)
        self._stages = build_stages(settings, reranker, registry)

    @property
    def stages(self) -> tuple[str, ...]:
        """The names of the stages that run, in order, for reports."""
        return (self._first.name, *(stage.name for stage in self._stages))

    def retrieve(self, query: SearchQuery) -> list[Hit]:
        search, hits = self._first.candidates(query)
        for stage in self._stages:
            hits = stage.run(search, hits)
        return hits[: query.k]
