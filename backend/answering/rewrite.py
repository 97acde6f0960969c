"""Follow-up questions made self-contained for retrieval, by rule (no model needed).

"What did he say about security?" retrieves nothing useful alone; with the previous
question and the names its answer gave, it finds the right article again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from backend.core.text import content_terms, split_sentences
from backend.core.types import Turn

_REFERRING = frozenset(
    """
    he she him his her hers they them their theirs it its this that these those there then
    """.split()
)
_FOLLOWUP_OPENERS = ("and ", "what about", "how about", "also ", "why ", "when ", "where ")
_NAME = re.compile(r"\b[A-Z][\w'’-]+(?:\s+(?:al-|Al-|bin |de |van |von )?[A-Z][\w'’-]+)+")
_MARKER = re.compile(r"\s*\[\d+\]")
_MAX_CONTEXT_WORDS = 30


def is_followup(question: str) -> bool:
    words = re.findall(r"[a-z']+", question.lower())
    if any(w in _REFERRING for w in words):
        return True
    if question.lower().lstrip().startswith(_FOLLOWUP_OPENERS) and len(content_terms(question)) <= 4:
        return True
    return len(content_terms(question)) <= 1


def rewrite_followup(question: str, history: Sequence[Turn]) -> str:
    """Return ``question`` with context from the last turn when it reads as a follow-up."""
    question = question.strip()
    if not history or not is_followup(question):
        return question
    last = history[-1]
    first_sentence = next(iter(split_sentences(_MARKER.sub("", last.answer))), "")
    names = [n for n in dict.fromkeys(_NAME.findall(first_sentence)) if n.lower() not in question.lower()][:3]
    context_words = " ".join([last.rewritten_query, *names]).split()[-_MAX_CONTEXT_WORDS:]
    return f"{question} (context: {' '.join(context_words)})"
