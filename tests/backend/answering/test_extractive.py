"""The extractive answerer over the real demo archive and the real embedding model."""

import pytest

from backend.answering.chain import NOT_FOUND
from backend.answering.extractive import ExtractiveAnswerer
from backend.core.types import Chunk, Hit, Source
from backend.services import Services
from tests.conftest import QARATAPA_ID, QARATAPA_QUESTION


def test_who_question_leads_with_the_sentence_naming_the_person(demo_services: Services) -> None:
    answer = demo_services.answers.ask(QARATAPA_QUESTION)
    assert answer.short_answer is not None and answer.short_answer.text == "Mardan Salih"
    assert "Mardan Salih [1]" in answer.text
    assert answer.citations[0].article_id == QARATAPA_ID
    assert "Mardan Salih" in answer.citations[0].snippet


@pytest.mark.parametrize(
    ("question", "expected", "article"),
    [
        ("Who heads the Tuz Khurmatu operations command?", "Imad Al-Maliki", "demo-001"),
        ("Who leads the dockers' union at Port Calder?", "Alma Reyes", "demo-009"),
        ("Who won the regional cup final?", "Ardenvale Rovers", "demo-013"),
    ],
)
def test_answers_cite_the_article_that_holds_the_answer(
    demo_services: Services, question: str, expected: str, article: str
) -> None:
    answer = demo_services.answers.ask(question)
    assert expected in answer.text
    assert answer.short_answer is not None and expected in answer.short_answer.text
    cited = {c.n: c.article_id for c in answer.citations}
    assert article in cited.values()


@pytest.mark.parametrize("question", ["What is the capital of France?", "recipe for banana bread"])
def test_questions_the_archive_cannot_answer_get_no_citations(demo_services: Services, question: str) -> None:
    answer = demo_services.answers.ask(question)
    assert answer.text.startswith(NOT_FOUND) and answer.citations == ()
    # It says what the archive holds and the nearest it came, and cites nothing.
    assert "It holds 24 articles published from 2023-04-20 to 2024-04-14." in answer.text
    assert 'The closest it has: "' in answer.text and "[" not in answer.text


def test_who_answers_lead_with_the_person_and_role_named_mid_sentence(demo_services: Services) -> None:
    text = (
        "On Wednesday the visiting delegation met Hana Karimi, the director of the Kifri water board, "
        "to discuss the dams. The talks lasted three hours."
    )
    chunk = Chunk(id="w:0", article_id="w", position=0, text=text, title="Water talks")
    answerer = ExtractiveAnswerer(demo_services.embedder, demo_services.settings.answer)
    draft = answerer.generate(
        "Who directs the Kifri water board?", [Source(1, "w", "Water talks", None, None, None, (Hit(chunk, 1.0),))]
    )
    assert draft.text.startswith("Hana Karimi, the director of the Kifri water board [1]. On Wednesday")
    plain = answerer.generate(
        "What did the delegation discuss?", [Source(1, "w", "Water talks", None, None, None, (Hit(chunk, 1.0),))]
    )
    assert plain.text.startswith("On Wednesday")  # only "who" questions get a lead
