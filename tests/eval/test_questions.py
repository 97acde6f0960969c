import json
import re
from datetime import date
from pathlib import Path

import pytest

from eval.questions import QuestionSetError, load_questions
from tests.conftest import ROOT


def _write(tmp_path: Path, *lines: object) -> Path:
    path = tmp_path / "q.jsonl"
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n", encoding="utf-8"
    )
    return path


def test_the_documented_format_loads_with_defaults() -> None:
    questions = load_questions(ROOT / "demo" / "questions.jsonl")
    by_id = {q.id: q for q in questions}
    assert by_id["qaratapa-commander"].answers == ("Mardan Salih",)
    assert by_id["qaratapa-followup"].history == ("Who commands the Qaratapa-Hamrin sector?",)
    assert by_id["rate-january"].as_of == date(2024, 2, 1) and by_id["rate-january"].relevant == ("demo-007",)
    assert by_id["off-archive-recipe"].unanswerable and not by_id["off-archive-recipe"].judged
    assert not by_id["qaratapa-commander"].unanswerable


def test_ids_default_to_the_line_number(tmp_path: Path) -> None:
    (question,) = load_questions(_write(tmp_path, {"question": "Who?"}))
    assert question.id == "line-1" and question.answers is None and question.history == ()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        ({"question": ""}, "'question' must be a non-empty string"),
        ({"question": "q", "as_of": "last week"}, "as_of must be YYYY-MM-DD"),
        ({"question": "q", "answers": "Mardan Salih"}, "answers must be a list of strings"),
        ({"question": "q", "extra": 1}, "unknown fields ['extra']"),
    ],
)
def test_bad_lines_name_the_file_and_line(tmp_path: Path, line: object, message: str) -> None:
    path = _write(tmp_path, {"question": "fine"}, line)
    with pytest.raises(QuestionSetError, match=re.escape(message)) as error:
        load_questions(path)
    assert f"{path}:2" in str(error.value)


def test_duplicate_ids_and_empty_sets_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(QuestionSetError, match="duplicate id 'a'"):
        load_questions(_write(tmp_path, {"id": "a", "question": "x"}, {"id": "a", "question": "y"}))
    with pytest.raises(QuestionSetError, match="no questions"):
        load_questions(_write(tmp_path, ""))
