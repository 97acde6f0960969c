from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pytest

from backend.answering.chain import NOT_FOUND, AnswerChain, number_sources, read_own_words, verify_citations
from backend.answering.rewrite import is_followup, rewrite_followup
from backend.core.types import Chunk, Draft, Hit, Source, Turn
from backend.retrieval.reading import QueryReader
from backend.services import Services
from tests.conftest import QARATAPA_ID, QARATAPA_QUESTION, chain_with


def _hit(article_id: str, position: int = 0, score: float = 0.5) -> Hit:
    return Hit(
        Chunk(id=f"{article_id}:{position}", article_id=article_id, position=position, text=f"t {article_id}"), score
    )


def test_number_sources_groups_chunks_by_article_in_rank_order() -> None:
    hits = [_hit("a"), _hit("b"), _hit("a", 1), _hit("c"), _hit("d")]
    sources = number_sources(hits, limit=3)
    assert [(s.n, s.article_id, len(s.hits)) for s in sources] == [(1, "a", 2), (2, "b", 1), (3, "c", 1)]


def test_verify_citations_drops_unknown_markers_and_renumbers_by_first_use() -> None:
    sources = number_sources([_hit("a"), _hit("b"), _hit("c")], limit=5)
    draft = Draft("C said so [3]. A agreed [1][7]. Both [1, 3]. Nothing [9].", snippets={3: "C's words"})
    text, citations = verify_citations(draft, sources)
    assert text == "C said so [1]. A agreed [2]. Both [2][1]. Nothing."
    assert [(c.n, c.article_id) for c in citations] == [(1, "c"), (2, "a")]
    assert citations[0].snippet == "C's words"
    assert citations[1].snippet == "t a"


class FixedGenerator:
    """A real ``AnswerGenerator`` that cites whatever it is told to, to test the chain around it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.seen: list[tuple[str, list[Source]]] = []

    def generate(self, question: str, sources: Sequence[Source], history: Sequence[Turn] = ()) -> Draft:
        self.seen.append((question, list(sources)))
        return Draft(self.text)


def _chain(services: Services, tmp_path: Path, generator: FixedGenerator) -> AnswerChain:
    return chain_with(services, tmp_path, generator)


def test_chain_keeps_only_citations_of_retrieved_articles(demo_services: Services, tmp_path: Path) -> None:
    generator = FixedGenerator("Real [1]. Invented [42].")
    answer = _chain(demo_services, tmp_path, generator).ask(QARATAPA_QUESTION)
    assert answer.text == "Real [1]. Invented."
    assert [c.article_id for c in answer.citations] == [generator.seen[0][1][0].article_id]
    assert answer.citations[0].article_id == QARATAPA_ID


def test_chain_answers_not_found_when_generator_finds_nothing(demo_services: Services, tmp_path: Path) -> None:
    answer = _chain(demo_services, tmp_path, FixedGenerator("")).ask("anything")
    assert answer.text.startswith(NOT_FOUND) and answer.citations == ()


def test_as_of_reaches_retrieval(demo_services: Services, tmp_path: Path) -> None:
    generator = FixedGenerator("x [1]")
    _chain(demo_services, tmp_path, generator).ask(QARATAPA_QUESTION, as_of=date(2023, 10, 3))
    _, sources = generator.seen[0]
    assert sources and QARATAPA_ID not in {s.article_id for s in sources}
    assert all(s.published_at is None or s.published_at.date() <= date(2023, 10, 3) for s in sources)


def test_follow_up_is_rewritten_with_the_previous_turn(demo_services: Services, tmp_path: Path) -> None:
    generator = FixedGenerator("Mardan Salih, the commander, spoke [1].")
    chain = _chain(demo_services, tmp_path, generator)
    first = chain.ask(QARATAPA_QUESTION)
    second = chain.ask("What did he say about security?", session_id=first.session_id)
    assert "Qaratapa-Hamrin" in second.rewritten_query and "Mardan Salih" in second.rewritten_query
    assert generator.seen[1][0] == second.rewritten_query
    fresh = chain.ask("What did he say about security?")
    assert fresh.rewritten_query == "What did he say about security?"


@pytest.mark.parametrize(
    ("question", "followup"),
    [
        ("What did he say?", True),
        ("And the date?", True),
        ("Who won the regional cup final in Ardenvale?", False),
        ("Who commands the Qaratapa-Hamrin sector?", False),
    ],
)
def test_is_followup(question: str, followup: bool) -> None:
    assert is_followup(question) is followup


def test_rewrite_leaves_standalone_questions_alone() -> None:
    history = [Turn("Who commands it?", "Who commands it?", "Someone [1].")]
    assert rewrite_followup("Who won the regional cup final?", history) == "Who won the regional cup final?"


@pytest.mark.parametrize(
    ("question", "answer", "expected_start"),
    [
        ("What did he say about security?", "Mardan Salih, the commander, said so [1].", "What did Mardan Salih say"),
        ("What will her second term focus on?", "Elena Voss won a second term [1].", "What will Elena Voss's second"),
        ("Who ran against her?", "Elena Voss won a second term [1].", "Who ran against Elena Voss?"),
        ("How did it end?", "About 1,200 dock workers went on strike [1].", "How did it end?"),
    ],
)
def test_rewrite_names_the_person_and_carries_the_topic(question: str, answer: str, expected_start: str) -> None:
    history = [Turn("Who leads it?", "Who leads it? (context: older)", answer)]
    rewritten = rewrite_followup(question, history)
    assert rewritten.startswith(expected_start)
    context = rewritten.split("(context: ", 1)[1]
    assert context.startswith("Who leads it?") and "older" not in context  # no nested contexts
    assert ("dock" in context) is ("dock" in answer)  # the answer's topic words come along


def test_time_and_outlets_are_read_from_the_users_words_never_from_carried_answers() -> None:
    reader = QueryReader(lambda: ["Tigris Ledger", "Northern Dispatch"])
    as_of = date(2026, 11, 30)
    earlier = Turn(
        question="Who commands the Qaratapa-Hamrin sector?",
        rewritten_query="Who commands the Qaratapa-Hamrin sector?",
        answer="On Wednesday a delegation visited, according to the Tigris Ledger; Mardan Salih commands it.",
    )
    question = "What did he say about security?"
    rewritten = "What did Mardan Salih say about security? On Wednesday a delegation visited the Tigris Ledger"
    reading = read_own_words(reader, question, rewritten, [earlier], as_of)
    assert reading.window is None and reading.sources == ()
    assert "Mardan Salih" in reading.text  # the carried context still reaches retrieval

    # The user's own earlier question still counts: the window and outlet carry over to the follow-up.
    asked = Turn("What did the Tigris Ledger report last week?", "same", "An answer from on Monday.")
    carried = read_own_words(reader, "Who was involved?", "Who was involved in the report?", [asked], as_of)
    assert carried.window is not None and carried.window.phrase == "last week"
    assert carried.sources == ("Tigris Ledger",)
    own = read_own_words(reader, "And in October?", "Tigris Ledger report in October", [asked], as_of)
    assert own.window is not None and own.window.phrase == "in October" and "October" not in own.text
