"""What a question asks for: the kind of thing that answers it, and what it already names.

A reader that knows "which retailer" wants an organisation, and that the retailer named in the
question cannot be the answer, can pick the one right span out of a sentence full of names.

One set of rules reads a list of tagged words. spaCy tags them where its model is installed;
without it, word lists guess the tags, so the analysis degrades instead of failing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from backend.core.text import content_terms

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

WHO, WHICH, WHERE, WHEN, HOW_MANY, OTHER = "who", "which/what", "where", "when", "how many", "other"
PERSON, ORG, PLACE, DATE, NUMBER, MONEY, PERCENT, THING, ANY = (
    "PERSON",
    "ORG",
    "PLACE",
    "DATE",
    "NUMBER",
    "MONEY",
    "PERCENT",
    "THING",
    "ANY",
)


@dataclass(frozen=True, slots=True)
class QuestionAnalysis:
    text: str
    kind: str  # the question word, for reports: "who", "which/what", "where", "when", "how many", "other"
    answer_type: str  # PERSON ORG PLACE DATE NUMBER MONEY PERCENT THING ANY
    focus: str | None  # "department store" for "which department stores": lower case, head lemmatised
    terms: tuple[str, ...]
    named: tuple[str, ...]  # entities and proper nouns of the question, lower case: never the answer


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Focus heads that mean one answer type. A head not listed keeps the answer a THING of that class.
_FOCUS_TYPES: dict[str, str] = {
    **dict.fromkeys(
        _words(
            """
            company firm retailer store chain bank team club agency party organization organisation university
            network airline brand carrier manufacturer maker automaker carmaker insurer lender startup group union
            charity newspaper broadcaster publisher studio label court ministry department council committee
            school college hospital institution regulator conglomerate giant supplier operator provider exchange
            outlet league alliance coalition militia fund business corporation subsidiary franchise restaurant
            supermarket grocer website platform app magazine channel station developer utility association
            federation body board parliament congress senate government administration authority
            """
        ),
        ORG,
    ),
    **dict.fromkeys(
        _words(
            """
            country city state nation region province island capital town village county district neighborhood
            neighbourhood continent territory port location place area site venue airport stadium arena river lake
            mountain sea ocean park municipality suburb borough prefecture republic kingdom emirate peninsula
            desert coast valley street bridge building prison border destination
            """
        ),
        PLACE,
    ),
    **dict.fromkeys(_words("year month day date decade century week weekday season time"), DATE),
    **dict.fromkeys(
        _words(
            """
            president leader ceo executive chief person man woman actor actress singer player minister politician
            senator governor mayor lawmaker legislator judge coach manager author writer director artist musician
            rapper athlete scientist researcher official spokesperson spokesman spokeswoman candidate chairman
            chairwoman founder owner journalist reporter doctor general commander officer soldier suspect victim
            winner star celebrity pope king queen prince princess emperor monarch premier chancellor secretary
            ambassador envoy diplomat lawyer attorney prosecutor activist billionaire entrepreneur economist analyst
            professor student teacher pilot astronaut driver footballer cricketer golfer boxer striker goalkeeper
            quarterback pitcher captain presenter host comedian filmmaker composer poet novelist chef designer
            architect inventor explorer priest bishop cleric imam rabbi dictator ruler representative successor
            predecessor head heir survivor witness worker employee nominee founder whistleblower
            """
        ),
        PERSON,
    ),
    **dict.fromkeys(
        _words("money dollar euro pound yen yuan rupee franc peso price cost fee salary wage budget revenue profit"),
        MONEY,
    ),
    **dict.fromkeys(_words("percent percentage proportion share fraction"), PERCENT),
    **dict.fromkeys(_words("number amount total population"), NUMBER),
}

# "What kind of aircraft": the noun after "of" is the class asked about.
_CLASS_WORDS = _words("kind type sort form variety")
_BE = _words("is was are were be 's ’s")
_HOW_QUANTITY = _words("long old far tall big large high fast deep often heavy wide small many much")
# "How much did the bridge cost?" asks for money though no noun says so.
_MONEY_WORDS = _words(
    """
    cost costs pay paid spend spent worth raise raised earn earned fetch fetched charge charged owe owed invest
    invested borrow borrowed sell sold bid offer offered priced valued fine fined budget budgeted lose lost
    """
)
_WH = _words("who whom whose which what where when how why")
_NAMING_VERBS = _words("name identify list")
# "Give the name of the ship ...", "State the name of ...".
_ASKING_VERBS = _words("give tell state provide")
_PREPS = _words(
    """
    in on at from to for by during since until under of among with into after before over through across between
    within per about against toward towards upon
    """
)
_DETERMINERS = _words("the a an this these those its his her their our my your some any every each no that")
_PRONOUNS = _words("it he she they we i you him them us me itself themselves")
_AUXILIARIES = _words("is are was were be been being do does did have has had will would can could should may might")
_AUXILIARIES |= _words("must shall 's ’s 're 've 'd 'll")
_CONJUNCTIONS = _words("and or but nor")
# Words a question may open with before its clause: "So which ...", "Also, who ...".
_OPENERS = _words("and so but also then now ok okay well approximately roughly about around exactly precisely")
# A question that opens with one of these may ask after a comma: "According to the report, which ...".
_LEAD_INS = _PREPS | _words(
    "according based following as besides apart aside other unlike like while although though if once because given"
)
_NUMBER_WORDS = _words("one two three four five six seven eight nine ten dozen hundred thousand million billion")
_QUIZ_WORDS = _NUMBER_WORDS | _words("following listed above below")
_ADJECTIVES = _words(
    """
    new old first last next previous former current chief final senior largest biggest smallest main major top
    best worst leading local national international foreign global same other only such many several few most
    more less british american european general
    """
)
# Adjectives that are nouns when no noun follows: "the chief executive", but "Which general led ...".
_ADJECTIVE_NOUNS = _words("general chief final senior major")
# Verbs common in news questions that the tagless fallback could take for nouns after "which company".
_VERBS = _words(
    """
    won lost bought sold made took gave got became led left ran built said told found held met paid spent sent
    began came went saw drove hired beat reached killed destroyed blocked sought brought kept rose fell grew
    struck joined produced wins loses buys sells makes takes gives gets becomes leads leaves builds says tells
    finds holds meets pays spends sends begins comes goes sees drives hires beats reaches kills owns plans hosts
    launches announces replaces faces signs wants needs costs produces win lose buy sell make take give become
    lead leave build say tell find hold meet pay spend send begin come go see hire reach kill own quit shut
    spread fled flew swept wrote spoke stole chose broke drew threw sank fought caught withdrew oversaw upheld
    """
)
# Plurals the lemmatiser would cut ("species" is not the plural of "specie" in news).
_INVARIANT = _words("species series news headquarters means physics politics economics aircraft people police")
_IRREGULAR = {"men": "man", "women": "woman", "children": "child", "feet": "foot", "mice": "mouse", "teeth": "tooth"}
_OBJECT_WORDS = _words("the a an its his her their this these those it them him")

_TOKEN = re.compile(r"(?:[A-Za-z]\.){2,}|['’]s\b|\w+(?:-\w+)*|[^\w\s]")


@dataclass(frozen=True, slots=True)
class _Word:
    text: str
    lower: str
    lemma: str
    pos: str  # a Universal Dependencies tag: spaCy's, or guessed from word lists


@dataclass(frozen=True, slots=True)
class _Reading:
    kind: str
    answer_type: str
    focus: str | None = None
    used: frozenset[int] = frozenset()  # the positions of the question word and the focus


def analyze_question(question: str, nlp: Language | None) -> QuestionAnalysis:
    if nlp is not None:
        return analyze_doc(nlp(question))
    words = _guess_tags(question)
    reading = _read(words, tagged=False)
    return _analysis(question, reading, _named_from_capitals(words, reading.used))


def analyze_doc(doc: Doc) -> QuestionAnalysis:
    """The analysis of a question already run through spaCy (``backend.nlp.pipe_docs`` for many)."""
    if _title_case([t.text for t in doc]):
        # The model reads "Which Team Won" as a name; the word lists know capitals say nothing there.
        reading = _read(_guess_tags(doc.text), tagged=False)
        return _analysis(doc.text, reading, [_clean_name(e.text) for e in doc.ents if e.label_ != "ORDINAL"])
    words = [_Word(t.text, t.lower_, t.lower_ if t.lower_ in _INVARIANT else t.lemma_.lower(), t.pos_) for t in doc]
    reading = _read(words, tagged=True)
    return _analysis(doc.text, reading, _named_from_doc(doc, words, reading.used))


def _analysis(text: str, reading: _Reading, named: list[str]) -> QuestionAnalysis:
    return QuestionAnalysis(
        text=text,
        kind=reading.kind,
        answer_type=reading.answer_type,
        focus=reading.focus,
        terms=tuple(content_terms(text)),
        named=tuple(dict.fromkeys(n for n in named if n)),
    )


# --- The rules, over tagged words -------------------------------------------------------------------------


def _read(words: list[_Word], tagged: bool) -> _Reading:
    """The reading of the sentence that asks: quiz questions set the scene first ("Breanna Stewart switched
    teams. Who will she play for?"), and the scene's capitals and verbs say nothing of the answer."""
    offset = _asking_sentence(words)
    reading = _read_sentence(words[offset:], tagged)
    return replace(reading, used=frozenset(offset + k for k in reading.used))


def _asking_sentence(words: list[_Word]) -> int:
    """Where the last sentence holding a question word starts; 0 for a one-sentence question."""
    starts = [0] + [k + 1 for k, w in enumerate(words[:-1]) if w.text in (".", "?", "!")]
    for start in reversed(starts):
        end = next((k for k in range(start, len(words)) if words[k].text in (".", "?", "!")), len(words))
        if any(w.lower in _WH for w in words[start:end]):
            return start
    return 0


def _read_sentence(words: list[_Word], tagged: bool) -> _Reading:
    start = _skip_openers(words)
    if start < len(words) and words[start].lower in _NAMING_VERBS and _names_a_thing(words, start + 1):
        return _focused(words, _after_determiner(words, start + 1), {start}, possessor=True)
    if start < len(words) and words[start].lower in _ASKING_VERBS and (name_of := _name_of(words, start)) is not None:
        return _focused(words, name_of, {start}, possessor=True)
    at = _find_wh(words, start, tagged)
    if at is None:
        return _Reading(OTHER, ANY)
    name_of = _name_of(words, at)
    if name_of is not None:
        return _focused(words, name_of, {at}, possessor=True)
    return _from_wh(words, at)


def _skip_openers(words: list[_Word]) -> int:
    at = 0
    while at < len(words) and (words[at].lower in _OPENERS or words[at].pos == "PUNCT"):
        at += 1
    return at


def _names_a_thing(words: list[_Word], at: int) -> bool:
    """ "Name the minister ...", "Name one of the ...": an imperative, not a question about names."""
    return at < len(words) and (words[at].lower in _DETERMINERS or words[at].lower in _NUMBER_WORDS)


def _after_determiner(words: list[_Word], at: int) -> int:
    """The position after "the", "one of the", "two of the following" and the like."""
    while at < len(words) and (words[at].lower in _DETERMINERS or words[at].lower in _QUIZ_WORDS):
        at += 1
        if at < len(words) and words[at].lower in ("of", "among"):
            at += 1
    return at


def _find_wh(words: list[_Word], start: int, tagged: bool) -> int | None:
    """The position of the question word: first, after a lead-in clause, or in place near the end."""
    at = start
    while at < len(words) and words[at].lower in _PREPS:  # "In what year", "To whom"
        at += 1
    if at < len(words) and words[at].lower in _WH:
        # "When the storm hit, which town flooded?": the opening "when" starts a clause, not the question.
        if words[at].lower == "when" and (later := _wh_after_comma(words, at)) is not None:
            return later
        return at
    if start < len(words) and words[start].lower in _LEAD_INS:
        later = _wh_after_comma(words, start)
        if later is not None:
            return later
    # "The amount produced by which type of energy hit a record": a determiner question word, in place.
    for k in range(start + 1, len(words) - 1):
        determiner = words[k + 1].pos in ("NOUN", "ADJ") or (not tagged and words[k + 1].lower in _CLASS_WORDS)
        if words[k].lower in ("which", "what") and words[k - 1].pos not in ("NOUN", "PROPN", "PUNCT") and determiner:
            return k
    # "The company said it would close which store?": the question word stays where the answer goes.
    for k in range(len(words) - 1, start, -1):
        if len(words) - k > 10:
            break
        if words[k].lower not in _WH:
            continue
        before = words[k - 1]
        if before.pos == "PUNCT" or (tagged and before.pos in ("NOUN", "PROPN", "PRON")):
            continue  # a relative clause: "the minister who resigned"
        return k
    return None


def _wh_after_comma(words: list[_Word], start: int) -> int | None:
    for k in range(start + 1, len(words) - 1):
        if words[k].text != ",":
            continue
        at = k + 1
        while at < len(words) and words[at].lower in _PREPS:
            at += 1
        if at < len(words) and words[at].lower in _WH:
            return at
    return None


def _name_of(words: list[_Word], at: int) -> int | None:
    """Where the thing named starts in "What is the name of the ship ...", else None."""
    if words[at].lower not in ("what", "which") and words[at].lower not in _ASKING_VERBS:
        return None
    for k in range(at + 1, min(at + 5, len(words) - 1)):
        if words[k].lower == "name" and words[k + 1].lower == "of":
            return _after_determiner(words, k + 2)
    return None


def _from_wh(words: list[_Word], at: int) -> _Reading:
    wh, nxt = words[at].lower, at + 1
    follows = words[nxt].lower if nxt < len(words) else ""
    if wh in ("who", "whom"):
        return _who(words, at)
    if wh == "whose":
        return _Reading(WHO, PERSON, None, frozenset({at}))
    if wh == "where":
        return _Reading(WHERE, PLACE, None, frozenset({at}))
    if wh == "when":
        return _Reading(WHEN, DATE, None, frozenset({at}))
    if wh == "how":
        return _how(words, at)
    if wh == "why":
        return _Reading(OTHER, ANY, None, frozenset({at}))
    # which / what
    if follows in ("of", "among"):  # "Which of these companies ..."
        return _focused(words, _after_determiner(words, nxt + 1), {at})
    if follows in ("one", "ones") and nxt + 1 < len(words) and words[nxt + 1].lower in ("of", "among"):
        return _focused(words, _after_determiner(words, nxt + 2), {at})
    reading = _focused(words, nxt, {at})
    if reading.focus is None and wh == "what" and follows in _BE:  # "What is the capital of ..."
        reading = _focused(words, nxt + 1, {at}, possessor=True)
    return reading


def _who(words: list[_Word], at: int) -> _Reading:
    """PERSON, unless a focus says the "who" is an organisation or a place: "Who is the retailer that ...",
    "Who won the contract, which firm?"."""
    nxt = at + 1
    reading: _Reading | None = None
    if nxt + 1 < len(words) and words[nxt].lower in _BE and words[nxt + 1].lower in _DETERMINERS:
        reading = _focused(words, nxt + 1, {at}, possessor=True)
    else:
        for k in range(nxt, len(words) - 1):
            # Only "which firm" itself: a relative "which" is followed by its verb, not by a noun.
            if words[k].lower in ("which", "what") and words[k + 1].pos == "NOUN":
                reading = _focused(words, k + 1, {at, k})
                break
    if reading is None:
        return _Reading(WHO, PERSON, None, frozenset({at}))
    of_type = reading.answer_type if reading.answer_type in (ORG, PLACE) else PERSON
    return _Reading(WHO, of_type, reading.focus, reading.used)


def _how(words: list[_Word], at: int) -> _Reading:
    nxt = at + 1
    follows = words[nxt].lower if nxt < len(words) else ""
    if follows in ("many", "much"):
        span = _noun_phrase(words, nxt + 1, possessor=False)
        focus = _focus_text(words, span) if span else None
        used = frozenset({at, nxt, *(range(*span) if span else ())})
        of_type = _FOCUS_TYPES.get(words[span[1] - 1].lemma) if span else None
        if of_type in (MONEY, PERCENT):
            return _Reading(HOW_MANY, of_type, focus, used)
        # "By how much did the Fed raise rates?" asks for a change, not a sum.
        by = at > 0 and words[at - 1].lower == "by"
        if follows == "much" and span is None and not by and any(w.lower in _MONEY_WORDS for w in words[nxt + 1 :]):
            return _Reading(HOW_MANY, MONEY, None, used)
        return _Reading(HOW_MANY, NUMBER, focus, used)
    if follows in _HOW_QUANTITY:  # "How long did ...", "How old was ..."
        return _Reading(OTHER, NUMBER, None, frozenset({at, nxt}))
    if nxt < len(words) and words[nxt].pos == "ADJ":  # "How secure are the areas?": a degree, often a share
        return _Reading(OTHER, NUMBER, None, frozenset({at, nxt}))
    return _Reading(OTHER, ANY, None, frozenset({at}))


def _focused(words: list[_Word], at: int, used: set[int], possessor: bool = False) -> _Reading:
    """A which/what reading whose focus is the noun phrase at ``at``; THING when its head means no type."""
    span = _noun_phrase(words, at, possessor)
    if span is None:
        return _Reading(WHICH, ANY, None, frozenset(used))
    start, end = span
    head = words[end - 1].lemma
    # "What kind of aircraft": the class is the noun after "of".
    if head in _CLASS_WORDS and end + 1 < len(words) and words[end].lower == "of":
        inner = _noun_phrase(words, end + 1, possessor=False)
        if inner is not None:
            start, end = inner[0], inner[1]
            head = words[end - 1].lemma
    # The words between the question word and the focus ("which two", "one of the") name nothing, but
    # the names among them do ("Which Premier League club").
    frame = {i for i in range(min(used), end) if not words[i].text[:1].isupper()}
    return _Reading(WHICH, _FOCUS_TYPES.get(head, THING), _focus_text(words, (start, end)), frozenset(used | frame))


def _noun_phrase(words: list[_Word], at: int, possessor: bool) -> tuple[int, int] | None:
    """``(start, end)`` of the common nouns that end the phrase at ``at``, past its determiners, adjectives and
    names ("Which Premier League club" -> "club"); with ``possessor``, past "the company's" as well."""
    skippable = {"DET", "ADJ", "NUM", "PROPN", "ADV"} | ({"PART"} if possessor else set())
    limit = at + 6
    while at < min(limit, len(words)) and words[at].pos in skippable and words[at].lower not in _WH:
        at += 1
    end = at
    while end < len(words) and end - at < 4 and words[end].pos == "NOUN":
        end += 1
    if end == at:
        return None
    if possessor and end < len(words) and words[end].lower in ("'s", "’s"):
        return _noun_phrase(words, end + 1, possessor)
    return at, end


def _focus_text(words: list[_Word], span: tuple[int, int]) -> str:
    start, end = span
    return " ".join([*(w.lower for w in words[start : end - 1]), words[end - 1].lemma])


# --- Named things -----------------------------------------------------------------------------------------


def _named_from_doc(doc: Doc, words: list[_Word], used: frozenset[int]) -> list[str]:
    named = [
        _clean_name(ent.text)
        for ent in doc.ents
        if ent.label_ != "ORDINAL" and not any(i in used for i in range(ent.start, ent.end))
    ]
    return named + _proper_runs(words, used)


def _named_from_capitals(words: list[_Word], used: frozenset[int]) -> list[str]:
    numbers = [w.lower for i, w in enumerate(words) if i not in used and any(c.isdigit() for c in w.text)]
    return _proper_runs(words, used) + numbers


def _proper_runs(words: list[_Word], used: frozenset[int]) -> list[str]:
    """Each proper noun, and each run of them ("elon musk", "bank of england")."""
    named: list[str] = []
    run: list[str] = []
    for i, word in enumerate([*words, _Word("", "", "", "PUNCT")]):
        if word.pos == "PROPN" and i not in used:
            run.append(word.lower)
            named.append(_clean_name(word.lower))
            continue
        if word.lower == "of" and run and i + 1 < len(words) and words[i + 1].pos == "PROPN":
            run.append(word.lower)
            continue
        if len(run) > 1:
            named.append(" ".join(run))
        run = []
    return named


def _clean_name(text: str) -> str:
    text = text.lower().strip()
    text = re.sub(r"^the\s+", "", text)
    return re.sub(r"['’]s$", "", text).strip()


# --- Tags without spaCy -----------------------------------------------------------------------------------


def _guess_tags(text: str) -> list[_Word]:
    tokens = _TOKEN.findall(text)
    title_case = _title_case(tokens)
    words = [_Word(t, t.lower(), _lemma(t.lower()), _guess_pos(t, i, title_case)) for i, t in enumerate(tokens)]
    after = [*(w.pos for w in words[1:]), "PUNCT"]
    for i, word in enumerate(words):
        retag = word.pos
        if word.pos == "NOUN" and i + 1 < len(words) and words[i + 1].lower in _OBJECT_WORDS:
            retag = "VERB"  # a bare word before "the" or "its": "Which team won the cup?"
        elif (
            word.pos == "NOUN"
            and i > 0
            and words[i - 1].pos == "NOUN"
            and words[i - 1].lemma in _FOCUS_TYPES
            and word.lemma not in _FOCUS_TYPES
            and after[i] in ("ADP", "DET", "PRON", "NUM", "PUNCT")
        ):
            retag = "VERB"  # "Which minister quit over ...": a known focus, then an unknown word before a preposition
        elif word.lower in _ADJECTIVE_NOUNS and after[i] not in ("NOUN", "ADJ"):
            retag = "NOUN"  # "Which general led the coup?"
        if retag != word.pos:
            words[i] = _Word(word.text, word.lower, word.lemma, retag)
    return words


def _title_case(tokens: list[str]) -> bool:
    """A headline-style question capitalises every word; capitals then say nothing about names."""
    letters = [t for t in tokens if t[:1].isalpha()]
    return len(letters) > 3 and all(t[0].isupper() for t in letters)


def _guess_pos(token: str, index: int, title_case: bool) -> str:
    lower = token.lower()
    if not token[0].isalnum():
        return "PART" if lower in ("'s", "’s") else "PUNCT"
    closed = next((pos for words, pos in _CLOSED_CLASSES if lower in words), None)
    if closed is not None:
        return closed
    if lower[0].isdigit() or lower in _NUMBER_WORDS:
        return "NUM"
    if token[0].isupper() and index > 0 and not title_case:
        return "PROPN"
    if lower in _ADJECTIVES or "-" in lower or (lower.endswith("est") and len(lower) > 5):
        return "ADJ"
    if lower in _VERBS or (lower.endswith("ed") and len(lower) > 4):
        return "VERB"
    return "NOUN"


# The closed word classes, checked in this order (a wh-word before a pronoun).
_CLOSED_CLASSES = (
    (_WH, "PRON"),
    (_DETERMINERS, "DET"),
    (_PREPS, "ADP"),
    (_AUXILIARIES, "AUX"),
    (_PRONOUNS, "PRON"),
    (_CONJUNCTIONS, "CCONJ"),
)


def _lemma(word: str) -> str:
    """A plural noun's singular, by rule: the fallback only lemmatises the head of a focus."""
    if word in _INVARIANT or len(word) < 4:
        return word
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word
