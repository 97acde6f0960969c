"""The reader over hand-built sources: candidates from spaCy's entities and noun phrases, scored with the
real embedding model and the committed weights."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backend.answering.reader import FEATURES, WEIGHTS, Reader
from backend.core.types import Chunk, Hit, Source
from backend.embedding import SentenceTransformerEmbedder
from backend.nlp import load_nlp

pytestmark = pytest.mark.skipif(load_nlp() is None, reason="spaCy's en_core_web_sm is not installed")


def source(n: int, text: str, title: str = "", outlet: str | None = None, article: str | None = None) -> Source:
    article = article or f"a{n}"
    chunk = Chunk(id=f"{article}:0", article_id=article, position=0, text=text, title=title, source=outlet)
    when = datetime(2024, 2, 1, tzinfo=UTC)
    return Source(n, article, title, None, outlet, when, (Hit(chunk, 1.0 / n),))


@pytest.fixture(scope="module")
def reader(embedder: SentenceTransformerEmbedder) -> Reader:
    nlp = load_nlp()
    assert nlp is not None
    return Reader(nlp, embedder)


def test_every_feature_has_a_weight_and_the_type_asked_for_outweighs_a_near_one() -> None:
    weights = dict(zip(FEATURES, WEIGHTS, strict=True))
    assert len(WEIGHTS) == len(FEATURES)
    assert weights["type"] > 0 and "near type" not in weights  # a near label counts half of "type"
    assert weights["number"] < 0  # a date or count is rarely the answer to a "which" question


def test_which_department_store_is_the_organisation_and_never_the_city_the_question_names(reader: Reader) -> None:
    text = (
        "Nordstrom said on Tuesday it would close its downtown San Francisco store in August, citing falling "
        "foot traffic. The department store has been a fixture of Market Street since 1988. "
        "Mayor London Breed said the city would work with the landlord."
    )
    result = reader.read("Which department store closed its downtown San Francisco location?", [source(1, text)])
    assert result.question.answer_type == "ORG"
    assert result.candidates[0].text == "Nordstrom"
    assert all(c.key not in ("san francisco", "downtown san francisco") for c in result.candidates)


def test_who_question_prefers_the_person_and_reads_the_sector_from_the_headline(reader: Reader) -> None:
    # The sentence only says "the sector": the headline and lead say which one.
    text = (
        "Security cooperation in the Second Qaratapa-Hamrin Sector has improved, officers say. "
        "A delegation from the Tuz Khurmatu Operations Command visited the lines on Wednesday. "
        "Mardan Salih, the commander of the sector, told reporters the areas were 99 percent secure."
    )
    title = "Iraqi army and Peshmerga cooperation grows in the Qaratapa-Hamrin sector"
    result = reader.read("Who commands the Qaratapa-Hamrin sector?", [source(1, text, title, "Kurdistan 24")])
    best = result.candidates[0]
    assert best.text == "Mardan Salih"
    assert best.features["type"] == 1.0 and best.features["context"] > 0.5
    assert result.evidence[best.evidence[0]].text.startswith("Mardan Salih, the commander")


def test_how_many_wants_a_number(reader: Reader) -> None:
    text = "The strike lasted 118 days, the longest in the union's history, before members approved the deal."
    result = reader.read("How many days did the strike last?", [source(1, text)])
    assert result.candidates[0].text == "118 days"


def test_support_counts_the_articles_and_outlets_that_name_a_candidate(reader: Reader) -> None:
    a = source(1, "Priya Natarajan will head the new plant in Ardenvale, the company said.", outlet="Meridian Wire")
    b = source(2, "The plant in Ardenvale will be run by Priya Natarajan from next spring.", outlet="Valley Courier")
    c = source(3, "Henrik Olsen will lead the Ardenvale plant, councillors heard.", outlet="Valley Courier")
    result = reader.read("Who will lead the new plant in Ardenvale?", [a, b, c])
    by_key = {cand.key: cand for cand in result.candidates}
    assert by_key["priya natarajan"].outlets == {"Meridian Wire", "Valley Courier"}
    assert by_key["priya natarajan"].sources == {1, 2}
    assert by_key["henrik olsen"].outlets == {"Valley Courier"}
    assert by_key["priya natarajan"].features["articles"] > by_key["henrik olsen"].features["articles"]


def test_quoted_titles_are_candidates(reader: Reader) -> None:
    text = "Channel 4 said its new series “Naked Education” drew almost 1,000 complaints to Ofcom in its first week."
    result = reader.read("Which new Channel 4 series has provoked complaints to Ofcom?", [source(1, text)])
    assert "Naked Education" in [c.text for c in result.candidates]


def test_sentences_already_given_are_not_read_again(reader: Reader) -> None:
    text = "Mardan Salih commands the sector. He said the areas were 99 percent secure."
    first = reader.read("Who commands the sector?", [source(1, text)])
    assert any("commands the sector" in e.text for e in first.evidence)
    from backend.core.text import normalize_for_hash

    again = reader.read(
        "Who commands the sector?",
        [source(1, text)],
        exclude=frozenset({normalize_for_hash("Mardan Salih commands the sector.")}),
    )
    assert all("commands the sector" not in e.text for e in again.evidence)


def test_whole_articles_are_read_where_the_store_gives_them(embedder: SentenceTransformerEmbedder) -> None:
    nlp = load_nlp()
    assert nlp is not None
    article = "The plant opens in spring. Priya Natarajan, a veteran engineer, will run the plant in Ardenvale."
    asked: list[str] = []

    def article_text(article_id: str) -> str:
        asked.append(article_id)
        return article

    passage = source(1, "The plant opens in spring.")
    result = Reader(nlp, embedder, article_text).read("Who will run the plant in Ardenvale?", [passage])
    assert asked == ["a1"] and result.candidates[0].text == "Priya Natarajan"
    # A store that fails costs the context, not the answer: the passage is read instead.
    broken = Reader(nlp, embedder, lambda _id: (_ for _ in ()).throw(OSError("gone")))
    assert broken.read("Who will run the plant in Ardenvale?", [passage]).candidates == []
