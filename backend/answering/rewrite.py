"""Follow-up questions made self-contained for retrieval: by rule (no model needed), or by the
configured language model when there is one, falling back to the rule.

"What did he say about security?" retrieves nothing useful alone; with the previous
question and the names its answer gave, it finds the right article again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import Executor

from langchain_core.language_models import BaseChatModel

from backend.answering.deadline import time_left
from backend.core.text import content_terms, split_sentences, strip_markers
from backend.core.types import Turn

_REFERRING = frozenset(
    """
    he she him his her hers they them their theirs it its this that these those there then
    """.split()
)
_FOLLOWUP_OPENERS = ("and ", "what about", "how about", "also ", "why ", "when ", "where ")
_NAME = re.compile(r"\b[A-Z][\w'’-]+(?:\s+(?:al-|Al-|bin |de |van |von )?[A-Z][\w'’-]+)+")
_MAX_CONTEXT_WORDS = 40
_CONDENSE_TURNS = 2
_MAX_CONDENSED_CHARS = 400
_TOPIC_WORDS = 8


def is_followup(question: str) -> bool:
    words = re.findall(r"[a-z']+", question.lower())
    if any(w in _REFERRING for w in words):
        return True
    if question.lower().lstrip().startswith(_FOLLOWUP_OPENERS) and len(content_terms(question)) <= 4:
        return True
    return len(content_terms(question)) <= 1


_PERSON_PRONOUN = re.compile(r"\b(he|she|him|his|her)\b(\s+\w)?", re.IGNORECASE)
_CONTEXT = re.compile(r"\s*\(context:.*\)\s*$", re.DOTALL)


def asked(query: str) -> str:
    """The question a rewritten query asks, without the context words added for retrieval: the reader
    takes the kind of answer wanted from it, never from words of earlier answers."""
    return _CONTEXT.sub("", query)


def _name_the_person(question: str, person: str) -> str:
    """ "What did he say?" -> "What did Mardan Salih say?"; "her second term" -> "Elena Voss's second term"."""

    def swap(m: re.Match[str]) -> str:
        pronoun, following = m.group(1).lower(), m.group(2) or ""
        possessive = pronoun == "his" or (pronoun == "her" and following.strip() != "")
        return f"{person}'s{following}" if possessive else f"{person}{following}"

    return _PERSON_PRONOUN.sub(swap, question, count=1)


def rewrite_followup(question: str, history: Sequence[Turn]) -> str:
    """Return ``question`` made standalone with the last turn when it reads as a follow-up.

    A personal pronoun becomes the first name the last answer gave ("What did he say about
    security?" -> "What did Mardan Salih say about security?"); the last question and the names
    of its answer are added as context, which carries the topic into "How did it end?".
    """
    question = question.strip()
    if not history or not is_followup(question):
        return question
    last = history[-1]
    previous = asked(last.rewritten_query)
    answer = strip_markers(last.answer)
    known = f"{previous} {question}".lower()
    names = [n for n in dict.fromkeys(_NAME.findall(answer)) if n.lower() not in known][:3]
    standalone = _name_the_person(question, names[0]) if names else question
    # The words of the answer's first sentence carry its topic ("the tram line") into "that line".
    first_sentence = next(iter(split_sentences(answer)), "")
    topic = [w for w in dict.fromkeys(re.findall(r"(?<![\w'-])[a-z][a-z'-]{3,}", first_sentence)) if w not in known]
    topic = [w for w in topic if content_terms(w)][:_TOPIC_WORDS]
    context_words = " ".join([previous, *names, *topic]).split()[:_MAX_CONTEXT_WORDS]
    return f"{standalone} (context: {' '.join(context_words)})"


CONDENSE_PROMPT = """Rewrite the last question of this conversation as one standalone question that can be
understood without the conversation: replace pronouns and vague references with the names and topics
they refer to. Reply with the question only.

{conversation}
Last question: {question}
Standalone question:"""


class LLMCondenser:
    """Follow-ups made standalone by the configured language model; by rule when it fails or is late."""

    def __init__(self, chat: BaseChatModel, timeout_s: float, *, pool: Executor) -> None:
        """``pool``: threads the model is called in, so that waiting for it can end in time; the services
        own them (``backend.pools``)."""
        self._chat = chat
        self._timeout_s = timeout_s
        self._pool = pool

    def __call__(self, question: str, history: Sequence[Turn]) -> str:
        if not history or not is_followup(question):
            return question.strip()
        conversation = "\n".join(
            f"Q: {t.question}\nA: {strip_markers(t.answer)[:400]}" for t in history[-_CONDENSE_TURNS:]
        )
        prompt = CONDENSE_PROMPT.format(conversation=conversation, question=question.strip())
        # The answer that follows shares this question's budget: a rewrite (a short reply) gets half of it,
        # so that retrieval and the extractive fallback still fit before the deadline when the model is slow.
        left = min(time_left(self._timeout_s), self._timeout_s / 2)
        if left <= 0:
            return rewrite_followup(question, history)
        try:
            reply = self._pool.submit(self._chat.invoke, prompt).result(timeout=left)
        except Exception:  # the rule-based rewrite is always there to fall back on
            return rewrite_followup(question, history)
        condensed = " ".join(str(reply.content).split()).strip().strip('"')
        if not condensed or len(condensed) > _MAX_CONDENSED_CHARS:
            return rewrite_followup(question, history)
        return condensed
