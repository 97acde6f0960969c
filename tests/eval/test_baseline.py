from dataclasses import replace

from backend.core.types import Chunk, SearchQuery
from backend.services import Services
from backend.store.chroma import join_chunks
from eval.baseline import CHUNK_SIZE, tutorial_retriever
from tests.conftest import QARATAPA_ID, QARATAPA_QUESTION

TEXT = "One sentence here. Two sentences here. Three sentences here. Four sentences here."


def test_join_chunks_keeps_each_overlap_once() -> None:
    base = Chunk(id="a:0", article_id="a", position=0, text="")
    first = replace(base, text=TEXT[:38])  # "One sentence here. Two sentences here."
    second = replace(base, id="a:1", position=1, text=TEXT[19:])  # overlaps by "Two sentences here."
    assert join_chunks([first.text, second.text]) == TEXT
    assert join_chunks([first.text, "Apart."]) == f"{TEXT[:38]}\n\nApart."


def test_tutorial_baseline_splits_by_characters_and_retrieves_densely(demo_services: Services) -> None:
    progress: list[tuple[int, int]] = []
    retriever = tutorial_retriever(demo_services, lambda done, total: progress.append((done, total)))
    assert progress and progress[-1][0] == progress[-1][1]
    hits = retriever.retrieve(SearchQuery(QARATAPA_QUESTION, k=3))
    assert hits[0].chunk.article_id == QARATAPA_ID
    assert all(len(h.chunk.text) <= CHUNK_SIZE and ":t" in h.chunk.id for h in hits)
    again: list[tuple[int, int]] = []
    tutorial_retriever(demo_services, lambda done, total: again.append((done, total)))
    assert again == []  # built once per archive, then reused
