"""Question analysis on the shapes news questions take, with spaCy's model and with the word-list fallback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from backend import nlp as nlp_module
from backend.answering.question import QuestionAnalysis, analyze_doc, analyze_question
from backend.core.text import content_terms
from backend.nlp import load_nlp, pipe_docs

if TYPE_CHECKING:
    from spacy.language import Language

Analyze = Callable[[str], QuestionAnalysis]


@pytest.fixture(scope="module")
def nlp() -> Language:
    model = load_nlp()
    if model is None:
        pytest.skip("spaCy's English model is not installed (requirements/spacy-model.txt)")
    return model


@pytest.fixture(params=["spacy", "fallback"])
def analyze(request: pytest.FixtureRequest) -> Analyze:
    """Both readers: every shape below must come out the same with the model and without it."""
    if request.param == "fallback":
        return lambda q: analyze_question(q, None)
    model: Language = request.getfixturevalue("nlp")
    return lambda q: analyze_question(q, model)


# (question, kind, answer type, focus)
SHAPES = [
    # who
    ("Who was appointed to run the central bank in April?", "who", "PERSON", None),
    ("Whom did the jury acquit of the bribery charges?", "who", "PERSON", None),
    ("Whose sculpture fetched the highest price at the Paris auction?", "who", "PERSON", None),
    ("Who is the new head coach of the Denver Broncos?", "who", "PERSON", "head coach"),
    ("Who is the retailer that sought bankruptcy protection in Texas?", "who", "ORG", "retailer"),
    ("Who won the ferry contract, which company?", "who", "ORG", "company"),
    ("According to prosecutors, who ordered the shredding of the files?", "who", "PERSON", None),
    ("Lawmakers elected whom as speaker after the deadlock?", "who", "PERSON", None),
    # which / what with a focus that means a type
    ("Which supermarket chain said it would cut 900 jobs?", "which/what", "ORG", "supermarket chain"),
    ("Which airline grounded its fleet after the software fault?", "which/what", "ORG", "airline"),
    ("Which Serie A club fired its coach on Monday?", "which/what", "ORG", "club"),
    ("Which tech giants were fined by regulators in Seoul?", "which/what", "ORG", "tech giant"),
    ("Which party took the most seats in the Portuguese election?", "which/what", "ORG", "party"),
    ("What brand of infant formula was pulled from shelves?", "which/what", "ORG", "brand"),
    ("Which country agreed to host the next climate summit?", "which/what", "PLACE", "country"),
    ("Which two cities were linked by the new high-speed line?", "which/what", "PLACE", "city"),
    ("What island was evacuated ahead of the cyclone?", "which/what", "PLACE", "island"),
    ("What is the capital of the breakaway region?", "which/what", "PLACE", "capital"),
    ("Which actress turned down the role in the sequel?", "which/what", "PERSON", "actress"),
    ("Which minister quit over the expenses row?", "which/what", "PERSON", "minister"),
    ("Which general led the coup?", "which/what", "PERSON", "general"),
    ("Which month did the dockworkers walk out?", "which/what", "DATE", "month"),
    ("What year did the bridge first open to traffic?", "which/what", "DATE", "year"),
    ("In what year was the cathedral consecrated?", "which/what", "DATE", "year"),
    ("What date was set for the referendum in Scotland?", "which/what", "DATE", "date"),
    ("What percentage of households lost power during the storm?", "which/what", "PERCENT", "percentage"),
    ("What percent of the harvest was lost to the drought?", "which/what", "PERCENT", "percent"),
    ("What share of the vote did the Greens win?", "which/what", "PERCENT", "share"),
    ("What was the cost of the stadium renovation?", "which/what", "MONEY", "cost"),
    # which / what with a focus of its own class
    ("What species of whale washed up near Cork?", "which/what", "THING", "species"),
    ("Which vaccines were approved for children under five?", "which/what", "THING", "vaccine"),
    ("What kind of drone struck the refinery?", "which/what", "THING", "drone"),
    ("What new rules did the watchdog propose for lenders?", "which/what", "THING", "rule"),
    # which / what without a focus
    ("What did divers find inside the wreck?", "which/what", "ANY", None),
    ("What happened to the missing submarine?", "which/what", "ANY", None),
    # quiz forms
    ("Which of these carmakers recalled the most vehicles?", "which/what", "ORG", "carmaker"),
    ("Which of the following towns flooded first?", "which/what", "PLACE", "town"),
    ("Which one of the banks needed a rescue?", "which/what", "ORG", "bank"),
    ("According to the inspectors' report, which hospital had the longest waits?", "which/what", "ORG", "hospital"),
    ("In 2019, which insurer paid out the most claims?", "which/what", "ORG", "insurer"),
    ("When the levee broke, which village was cut off?", "which/what", "PLACE", "village"),
    ("The retailer announced it would shut which warehouse?", "which/what", "THING", "warehouse"),
    ("The treaty was ratified by which country last?", "which/what", "PLACE", "country"),
    ("Name the senator who blocked the nomination.", "which/what", "PERSON", "senator"),
    ("Name one of the firms that bid for the licence.", "which/what", "ORG", "firm"),
    ("Identify the agency that cleared the merger.", "which/what", "ORG", "agency"),
    ("What is the name of the tanker that ran aground off Brittany?", "which/what", "THING", "tanker"),
    ("What was the name of the storm that hit the Gulf coast?", "which/what", "THING", "storm"),
    ("What is the name of the union's general secretary?", "which/what", "PERSON", "secretary"),
    ("Give the name of the charity that ran the shelter.", "which/what", "ORG", "charity"),
    # where / when
    ("Where will the next Commonwealth Games be held?", "where", "PLACE", None),
    ("When did the strike at the port end?", "when", "DATE", None),
    ("From which port did the ship sail?", "which/what", "PLACE", "port"),
    # how many / how much
    ("How many passengers were on board the ferry?", "how many", "NUMBER", "passenger"),
    ("How many minutes did the blackout last?", "how many", "NUMBER", "minute"),
    ("The landslide destroyed how many homes?", "how many", "NUMBER", "home"),
    ("How much money did the county borrow for the tram?", "how many", "MONEY", "money"),
    ("How much did the new terminal cost?", "how many", "MONEY", None),
    ("How many euros did the startup raise?", "how many", "MONEY", "euro"),
    ("How much snow fell in Denver overnight?", "how many", "NUMBER", "snow"),
    ("By how much did the central bank raise rates?", "how many", "NUMBER", None),
    ("How old was the sailor when she finished the race?", "other", "NUMBER", None),
    # other
    ("Why did the council close the library?", "other", "ANY", None),
    ("How did the prisoners escape?", "other", "ANY", None),
    ("Did the mayor sign the budget?", "other", "ANY", None),
]


@pytest.mark.parametrize(("question", "kind", "answer_type", "focus"), SHAPES, ids=[s[0][:48] for s in SHAPES])
def test_shape(analyze: Analyze, question: str, kind: str, answer_type: str, focus: str | None) -> None:
    result = analyze(question)
    assert (result.kind, result.answer_type, result.focus) == (kind, answer_type, focus)


def test_enough_shapes_are_covered() -> None:
    assert len(SHAPES) >= 40
    assert {s[2] for s in SHAPES} == {"PERSON", "ORG", "PLACE", "DATE", "NUMBER", "MONEY", "PERCENT", "THING", "ANY"}


@pytest.mark.parametrize(
    ("question", "named", "not_named"),
    [
        ("Which company did Jeff Bezos sell his stake in during 2021?", {"jeff bezos", "bezos", "2021"}, {"company"}),
        ("Which of these firms was fined by the European Commission?", {"european commission"}, {"firm", "which"}),
        ("Who beat Real Madrid in the Champions League final?", {"real madrid", "champions league"}, {"who"}),
        ("Which Premier League side sacked its manager?", {"premier league"}, {"side", "which"}),
        ("Why did the Bank of England hold rates?", {"bank of england"}, set()),
        ("Where did Putin meet Kim Jong Un?", {"putin", "kim jong un"}, {"where"}),
    ],
)
def test_named(analyze: Analyze, question: str, named: set[str], not_named: set[str]) -> None:
    result = analyze(question)
    assert named <= set(result.named)
    assert not (not_named & set(result.named))


def test_the_frame_names_nothing(nlp: Language) -> None:
    """'two' and 'one' are part of the quiz frame, not entities a candidate answer must avoid."""
    assert analyze_question("Which two countries signed the accord in Oslo?", nlp).named == ("oslo",)
    assert "one" not in analyze_question("Name one of the firms that bid for the licence.", nlp).named


def test_ordinals_are_not_names(nlp: Language) -> None:
    assert "first" not in analyze_question("Which newspaper first reported the leak?", nlp).named


def test_headline_case_is_read_by_the_word_lists(nlp: Language) -> None:
    """The model takes 'Which Team Won' for a name; capitals there must not decide the focus."""
    result = analyze_question("Which Team Won The World Series?", nlp)
    assert (result.answer_type, result.focus) == ("ORG", "team")
    assert "team" not in result.named


def test_fallback_misses_a_name_that_opens_the_question(nlp: Language) -> None:
    """Without the model, capitals at the start say nothing: a known limit the model removes."""
    question = "Boeing said it would cut which programme?"
    assert "boeing" in analyze_question(question, nlp).named
    assert "boeing" not in analyze_question(question, None).named


def test_terms_and_text() -> None:
    question = "Which retailers closed stores in Ohio?"
    result = analyze_question(question, None)
    assert isinstance(result, QuestionAnalysis)
    assert result.text == question
    assert result.terms == tuple(content_terms(question))
    assert "ohio" in result.terms and "which" not in result.terms


def test_analysis_is_frozen() -> None:
    result = analyze_question("Who won?", None)
    with pytest.raises(AttributeError):
        result.kind = "other"  # type: ignore[misc]


def test_empty_question() -> None:
    result = analyze_question("", None)
    assert (result.kind, result.answer_type, result.focus, result.named) == ("other", "ANY", None, ())


def test_pipe_docs_matches_one_at_a_time(nlp: Language) -> None:
    questions = [s[0] for s in SHAPES[:10]]
    assert [analyze_doc(d) for d in pipe_docs(nlp, questions)] == [analyze_question(q, nlp) for q in questions]


def test_the_model_keeps_what_the_reader_needs(nlp: Language) -> None:
    assert {"tagger", "parser", "ner", "lemmatizer"} <= set(nlp.pipe_names)
    assert load_nlp() is nlp  # cached: loaded once per process


def test_a_missing_model_is_none_and_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(nlp_module, "MODEL_PACKAGES", ("byline_no_such_model",))
    load_nlp.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="byline.nlp"):
            assert load_nlp() is None
            assert load_nlp() is None
        assert len([r for r in caplog.records if r.name == "byline.nlp"]) == 1
    finally:
        load_nlp.cache_clear()
