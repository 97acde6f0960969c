"""Question sets: JSON Lines, one question a line.

``{"id", "question", "as_of": date | null, "answers": [str] | null, "relevant": [article id or URL] | null,
"choices": [str] | null, "history": [earlier questions] | null}``

A passage is relevant when its article is in ``relevant``, or, where only ``answers`` is given,
when it contains one of them (case-insensitive). ``"answers": []`` with no ``relevant`` marks a
question the archive cannot answer: the right response is to say so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

# The evaluation reports judged questions apart by where the answer sits: "fresh" when an article
# published in these days before as_of holds it (see eval.runner.question_kind).
FRESH_DAYS = 14


class QuestionSetError(ValueError):
    """A question set line that cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    question: str
    as_of: date | None = None
    answers: tuple[str, ...] | None = None
    relevant: tuple[str, ...] | None = None
    choices: tuple[str, ...] | None = None
    history: tuple[str, ...] = ()

    @property
    def unanswerable(self) -> bool:
        return self.answers == () and not self.relevant

    @property
    def judged(self) -> bool:
        """Whether retrieval can be judged: there is something to call relevant."""
        return bool(self.relevant) or bool(self.answers)


def _strings(value: Any, field: str, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise QuestionSetError(f"{where}: {field} must be a list of strings or null")
    return tuple(v for v in value if v.strip())


def parse_question(record: Any, where: str, default_id: str) -> Question:
    if not isinstance(record, dict):
        raise QuestionSetError(f"{where}: expected a JSON object")
    unknown = set(record) - {"id", "question", "as_of", "answers", "relevant", "choices", "history"}
    if unknown:
        raise QuestionSetError(f"{where}: unknown fields {sorted(unknown)}")
    text = record.get("question")
    if not isinstance(text, str) or not text.strip():
        raise QuestionSetError(f"{where}: 'question' must be a non-empty string")
    as_of = record.get("as_of")
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except (TypeError, ValueError) as exc:
        raise QuestionSetError(f"{where}: as_of must be YYYY-MM-DD or null, got {as_of!r}") from exc
    return Question(
        id=str(record.get("id") or default_id),
        question=text.strip(),
        as_of=day,
        answers=_strings(record.get("answers"), "answers", where),
        relevant=_strings(record.get("relevant"), "relevant", where),
        choices=_strings(record.get("choices"), "choices", where),
        history=_strings(record.get("history"), "history", where) or (),
    )


def load_questions(path: Path) -> list[Question]:
    questions: list[Question] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise QuestionSetError(f"{where}: invalid JSON ({exc.msg})") from exc
            question = parse_question(record, where, default_id=f"line-{number}")
            if question.id in seen:
                raise QuestionSetError(f"{where}: duplicate id {question.id!r}")
            seen.add(question.id)
            questions.append(question)
    if not questions:
        raise QuestionSetError(f"{path}: no questions")
    return questions
