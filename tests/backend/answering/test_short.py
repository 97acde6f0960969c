"""The short answerer's wording: the short answer and its sentence, not-sure, reports that differ, quotes,
and the fall back to quoting sentences where spaCy's model is absent."""

from __future__ import annotations

from backend.answering.extractive import ExtractiveAnswerer
from backend.answering.question import QuestionAnalysis
from backend.answering.reader import Candidate, Evidence, ReaderResult, calibrated
from backend.answering.short import ShortAnswerer, asks_for_words, said_before
from backend.core.text import normalize_for_hash
from backend.core.types import Chunk, Hit, Source, Turn
from backend.embedding import SentenceTransformerEmbedder
from backend.settings import AnswerSettings


def src(n: int, outlet: str) -> Source:
    chunk = Chunk(id=f"a{n}:0", article_id=f"a{n}", position=0, text="x", source=outlet)
    return Source(n, f"a{n}", f"Story {n}", None, outlet, None, (Hit(chunk, 1.0),))


def result(cands: list[Candidate], question: str = "Who will head the plant?", confidence: float = 0.8) -> ReaderResult:
    kind, wanted = ("which/what", "ANY") if question.startswith("What") else ("who", "PERSON")
    analysis = QuestionAnalysis(question, kind, wanted, None, ("head", "plant"), ())
    evidence = [
        Evidence(src(1, "Meridian Wire"), "Priya Natarajan will head the plant.", frozenset(), semantic=0.7),
        Evidence(src(2, "Valley Courier"), "Henrik Olsen will head the plant.", frozenset(), semantic=0.6),
    ]
    return ReaderResult(analysis, evidence, cands, confidence)


def cand(text: str, evidence: int, outlets: set[str], score: float) -> Candidate:
    return Candidate(text, text.casefold(), {"type": 1.0}, [evidence], {evidence + 1}, outlets, score)


class FakeReader:
    def __init__(self, out: ReaderResult) -> None:
        self.out = out
        self.asked: list[str] = []
        self.excluded: list[frozenset[str]] = []

    def read(self, question: str, sources: object, exclude: frozenset[str] = frozenset()) -> ReaderResult:
        self.asked.append(question)
        self.excluded.append(exclude)
        return self.out


def answerer(reader: FakeReader, embedder: SentenceTransformerEmbedder, **settings: float) -> ShortAnswerer:
    answer_settings = AnswerSettings(**settings)
    return ShortAnswerer(reader, ExtractiveAnswerer(embedder, answer_settings), answer_settings)  # type: ignore[arg-type]


def test_a_sure_answer_leads_with_the_short_answer_then_its_sentence(embedder: SentenceTransformerEmbedder) -> None:
    fake = FakeReader(result([cand("Priya Natarajan", 0, {"Meridian Wire"}, -1.0)]))
    draft = answerer(fake, embedder).generate("Who will head the plant?", [src(1, "Meridian Wire")])
    assert draft.text == 'Priya Natarajan [1]. "Priya Natarajan will head the plant." [1]'
    assert draft.short_answer is not None and draft.short_answer.text == "Priya Natarajan"
    assert (draft.short_answer.n, draft.short_answer.outlets, draft.short_answer.confidence) == (
        1,
        ("Meridian Wire",),
        0.8,
    )
    assert draft.snippets == {1: "Priya Natarajan will head the plant."}


def test_below_the_threshold_the_answer_says_it_is_not_sure(embedder: SentenceTransformerEmbedder) -> None:
    fake = FakeReader(result([cand("Priya Natarajan", 0, {"Meridian Wire"}, -1.0)], confidence=0.1))
    draft = answerer(fake, embedder, min_confidence=0.3).generate("Who will head the plant?", [src(1, "Meridian Wire")])
    assert (
        draft.text
        == 'Not sure: perhaps Priya Natarajan [1]. The best evidence: "Priya Natarajan will head the plant." [1]'
    )
    # A runner-up of the very type asked for is named too, with its sentence.
    both = [cand("Priya Natarajan", 0, {"Meridian Wire"}, -1.0), cand("Henrik Olsen", 1, {"Meridian Wire"}, -2.0)]
    draft = answerer(FakeReader(result(both, confidence=0.1)), embedder, min_confidence=0.3).generate("q", [])
    assert draft.text == (
        "Not sure: perhaps Priya Natarajan [1], or Henrik Olsen [2]. The best evidence: "
        '"Priya Natarajan will head the plant." [1] "Henrik Olsen will head the plant." [2]'
    )
    assert draft.short_answer is not None and draft.short_answer.text == "Priya Natarajan"
    assert draft.short_answer is not None and draft.short_answer.confidence == 0.1


def test_outlets_that_disagree_are_each_cited(embedder: SentenceTransformerEmbedder) -> None:
    both = [cand("Priya Natarajan", 0, {"Meridian Wire"}, -1.0), cand("Henrik Olsen", 1, {"Valley Courier"}, -1.3)]
    draft = answerer(FakeReader(result(both)), embedder).generate("Who will head the plant?", [])
    assert draft.text.startswith("Reports differ: Priya Natarajan [1], Henrik Olsen [2].")
    assert set(draft.snippets) == {1, 2}
    # A rival far behind, or one that an outlet of the best answer also names, is no disagreement.
    behind = [both[0], cand("Henrik Olsen", 1, {"Valley Courier"}, -3.0)]
    assert not answerer(FakeReader(result(behind)), embedder).generate("q", []).text.startswith("Reports differ")
    shared = [both[0], cand("Henrik Olsen", 1, {"Meridian Wire", "Valley Courier"}, -1.1)]
    assert not answerer(FakeReader(result(shared)), embedder).generate("q", []).text.startswith("Reports differ")


def test_what_someone_said_is_answered_with_the_quote_and_the_context_words_are_not_read(
    embedder: SentenceTransformerEmbedder,
) -> None:
    asked = "What did Mardan Salih say about security?"
    fake = FakeReader(result([cand("Priya Natarajan", 0, {"Meridian Wire"}, -1.0)], question=asked))
    history = [Turn("Who commands the sector?", "q", 'Mardan Salih [1]. "Mardan Salih commands the sector." [1]')]
    draft = answerer(fake, embedder).generate(f"{asked} (context: commander sector)", [], history)
    # The rewriter's context words help retrieval, never the reading; what someone said is read again in full.
    assert fake.asked == [asked, asked]
    assert normalize_for_hash("Mardan Salih commands the sector.") in fake.excluded[0] and not fake.excluded[1]
    assert draft.text == '"Priya Natarajan will head the plant." [1]' and draft.short_answer is None
    assert asks_for_words(fake.out)


def test_said_before_collects_the_quoted_and_plain_sentences_of_earlier_answers() -> None:
    turns = [Turn("q", "q", 'Not sure: perhaps X [1]. The best evidence: "The sector is calm, he said." [2]')]
    said = said_before(turns)
    assert normalize_for_hash("The sector is calm, he said.") in said


def test_an_uncovered_question_gets_no_answer(embedder: SentenceTransformerEmbedder) -> None:
    weak = result([cand("Priya Natarajan", 0, {"Meridian Wire"}, -1.0)])
    for evidence in weak.evidence:
        evidence.semantic = 0.1
    assert answerer(FakeReader(weak), embedder, min_support=0.35).generate("q", []).text == ""


def test_without_the_model_sentences_are_quoted(embedder: SentenceTransformerEmbedder) -> None:
    settings = AnswerSettings()
    quotes = ExtractiveAnswerer(embedder, settings)
    text = "Priya Natarajan will head the new chip plant in Ardenvale from next spring, the company said."
    chunk = Chunk(id="a:0", article_id="a", position=0, text=text, title="Plant")
    sources = [Source(1, "a", "Plant", None, None, None, (Hit(chunk, 1.0),))]
    draft = ShortAnswerer(None, quotes, settings).generate("Who will head the chip plant in Ardenvale?", sources)
    assert draft.text == quotes.generate("Who will head the chip plant in Ardenvale?", sources).text
    assert draft.short_answer is None


def test_confidence_grows_with_the_margin_over_the_other_candidates() -> None:
    assert calibrated([]) == 0.0
    alone, close = calibrated([-2.0, -8.0, -8.0]), calibrated([-2.0, -2.1, -2.2])
    assert 0.0 < close < alone < 1.0
