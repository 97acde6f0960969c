"""Pure text helpers shared by ingest (chunking) and answering (sentence selection)."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterator

# Words that end with a period without ending a sentence. News copy is full of them
# ("Maj. Gen.", "Oct. 4", "U.S."), and a split there cuts a name from its title.
_ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof sr jr st mt ft gen maj col lt sgt capt cmdr adm gov sen rep pres rev hon jan
    feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thurs fri sat sun no nos vol
    pp inc ltd corp co bros dept est approx vs etc al fig ave blvd rd
    """.split()
)

# A sentence ends at . ! ? … before a space and a capital or a digit of any script (Cyrillic, Greek), or a
# letter of a script without case (Arabic); at the full-width stops of Chinese and Japanese whatever follows.
_BOUNDARY = re.compile(r"""[.!?…؟]+["'”’)\]]*\s+|[。！？]+["'”’」』)\]]*\s*""")
_OPENERS = "\"'“‘«„(["


def _starts_sentence(text: str, at: int) -> bool:
    while at < len(text) and text[at] in _OPENERS:
        at += 1
    if at >= len(text):
        return False
    first = text[at]
    return first.isdigit() or first.isupper() or (first.isalpha() and not first.islower())


_LINE = re.compile(r"[^\n]+")
_WORD = re.compile(r"[\w]+(?:['’][\w]+)?", re.UNICODE)


def _is_false_boundary(text: str, end: int) -> bool:
    """True when the period at ``text[end]`` belongs to an abbreviation or an initial."""
    start = end
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "."):
        start -= 1
    word = text[start:end].lower().rstrip(".")
    if not word:
        return False
    if len(word) == 1 and word.isalpha():  # an initial: "George W. Bush"
        return True
    if "." in word:  # "U.S.", "a.m."
        return True
    return word in _ABBREVIATIONS


def sentence_spans(text: str) -> Iterator[tuple[int, int]]:
    """Yield ``(start, end)`` of each sentence; paragraph breaks always end a sentence."""
    for line in _LINE.finditer(text):
        para, para_start = line.group(0), line.start()
        cursor = 0
        for match in _BOUNDARY.finditer(para):
            period_at = match.start()
            if para[period_at] not in "。！？" and not _starts_sentence(para, match.end()):
                continue
            if para[period_at] == "." and _is_false_boundary(para, period_at):
                continue
            end = match.end()
            yield from _strip_span(text, para_start + cursor, para_start + end)
            cursor = end
        yield from _strip_span(text, para_start + cursor, para_start + len(para))


def _strip_span(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        yield start, end


def split_sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


_STOPWORDS = frozenset(
    """
    a an the and or but if of at by for with about against between into through during before after
    above below to from up down in out on off over under again further then once here there when
    where why how all any both each few more most other some such no nor not only own same so than
    too very can will just don should now is are was were be been being have has had having do does
    did doing i me my we our you your he him his she her it its they them their what which who whom
    this that these those am would could also said says say told tell according did does as
    """.split()
)


# The version of ``content_terms``: an index stores the terms of its passages, so one built with another
# analyzer must be rebuilt before it meets a question's terms (see backend.store.lexical). Bump it with any
# change to the words, the stopwords or the stemmer. Snowball's English stemmer (PyStemmer) was measured in its
# place on the dev set and scored a little lower everywhere (docs/text-analysis.md), so the five suffixes stay.
ANALYZER_VERSION = 1


def content_terms(text: str) -> list[str]:
    """Lower-cased word terms without stopwords, lightly stemmed so "commands" meets "commander"."""
    return [t for t in map(_term, _WORD.findall(text)) if t]


@functools.lru_cache(maxsize=200_000)
def _term(word: str) -> str:
    """A word as a term, "" for a stopword. Cached: a news vocabulary repeats, and the reranker reads
    its candidates' words on every question (the stemming loop was most of its time)."""
    folded = word.lower()
    return "" if folded in _STOPWORDS else _stem(folded)


def _stem(word: str) -> str:
    for suffix in ("ers", "er", "ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


_CITATION_MARKER = re.compile(r"\s*\[\d+\]")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")


def strip_markers(text: str) -> str:
    """Text without its ``[n]`` citation markers (an earlier answer quoted as context)."""
    return _CITATION_MARKER.sub("", text)


def tidy_spacing(text: str) -> str:
    """Runs of whitespace as one space, none before punctuation: text after words were cut out of it."""
    return _SPACE_BEFORE_PUNCT.sub(r"\1", " ".join(text.split()))


def normalize_for_hash(text: str) -> str:
    return " ".join(text.split()).casefold()


def text_hash(text: str, length: int = 16) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


# Text that addresses an AI assistant rather than a reader: prompt injection planted in an article.
# Such sentences are never quoted by the extractive answerer, never shown to a model, and never
# count as support for a citation. English, French, German, Spanish, Italian, Portuguese, Arabic, Kurdish,
# Persian, Turkish, Russian and Ukrainian, Chinese and Japanese.
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:instructions?|prompts?|rules|guidelines|directions)\b"
    r"|\b(?:system|developer)\s+(?:prompt|message|instructions?)\b"
    r"|\byou\s+(?:are\s+now|must\s+now|will\s+now)\b"
    r"|\b(?:as\s+an?\s+)?(?:ai|language\s+model|assistant|chatbot|llm)\b.{0,30}\b(?:must|should|reply|respond|answer|say)\b"
    r"|\b(?:reply|respond|answer)\s+(?:only\s+)?(?:with|by\s+saying)\b"
    r"|\bignorez?\b.{0,40}\binstructions\b|\bignoriere?n?\b.{0,40}\banweisungen\b"
    r"|\bignor[ae]\b.{0,40}\binstrucci[oó]nes\b|\bignora\b.{0,40}\bistruzioni\b|\bignore\b.{0,40}\binstruções\b"
    r"|تجاهل.{0,40}التعليمات|پشتگوێ|نادیده\s+بگیر|talimatlar\w*\s+(?:yok\s+say|görmezden)"
    r"|\b(?:забудь(?:те)?|(?:про)?игнорируй(?:те)?|не\s+обращай|ігноруй(?:те)?)\b.{0,40}"
    r"(?:указани|инструкци|правил|вказівк|інструкці)"
    r"|\b(?:ответь(?:те)?|отвечай(?:те)?)\s+только\b|\bвідповідай(?:те)?\s+лише\b"
    r"|(?:忽略|无视|忽视|忘记|忘掉|無視|忘れ).{0,20}(?:指示|指令|提示|规则|規則|说明)|只(?:回答|回复|输出)"
    r"|(?:指示|指令|命令).{0,10}(?:を無視|を忘れ)",
    re.IGNORECASE | re.DOTALL,
)


def looks_like_instruction(sentence: str) -> bool:
    return bool(_INSTRUCTION.search(sentence))


_QUOTE_MIN_WORDS, _QUOTE_MAX_CHARS = 4, 600


def quotable(sentence: str, seen: set[str]) -> bool:
    """True for a sentence an answer may quote, which is then marked in ``seen``: not quoted before (in any
    spacing or case), neither a fragment nor a run-on paragraph, and not text planted for a model."""
    key = normalize_for_hash(sentence)
    if key in seen or len(sentence) > _QUOTE_MAX_CHARS or len(sentence.split()) < _QUOTE_MIN_WORDS:
        return False
    if looks_like_instruction(sentence):
        return False  # planted for a model, not news: never quoted
    seen.add(key)
    return True


_NON_ALNUM = re.compile(r"[\W_]+", re.UNICODE)


def source_key(name: str) -> str:
    """Outlet names compared without case, spaces or punctuation ("The Verge" == "the-verge")."""
    return _NON_ALNUM.sub("", name.casefold())


@functools.lru_cache(maxsize=256)
def source_keys(sources: tuple[str, ...]) -> frozenset[str]:
    """The keys of a filter's outlets, computed once per filter rather than once per chunk tested."""
    return frozenset(source_key(s) for s in sources)
