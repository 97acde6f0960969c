"""``byline eval answers --modes``: run as a user runs it, a subprocess with its own data directory."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.settings import AnswerSettings
from eval.cli import _answer_modes
from tests.conftest import DEMO, ROOT

BYLINE = [sys.executable, "-m", "byline"]


def _run(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BYLINE_DATA_DIR": str(data_dir)}
    return subprocess.run([*BYLINE, *args], capture_output=True, text=True, env=env, timeout=300, check=False)


def test_answer_modes_default_to_the_configured_one_and_keep_the_other_settings() -> None:
    base = AnswerSettings(mode="quotes", min_confidence=0.5)
    assert list(_answer_modes(None, base)) == ["quotes"]
    modes = _answer_modes(" short, quotes,short ", base)
    assert list(modes) == ["short", "quotes"]
    assert modes["short"].mode == "short" and modes["short"].min_confidence == 0.5
    with pytest.raises(ValueError, match="'bogus'"):
        _answer_modes("short,bogus", base)
    with pytest.raises(ValueError):
        _answer_modes(" , ", base)


def test_an_unknown_mode_is_a_usage_error(tmp_path: Path) -> None:
    result = _run(["eval", "answers", str(ROOT / "demo" / "questions.jsonl"), "--modes", "short,bogus"], tmp_path)
    assert result.returncode == 2 and "unknown answer mode 'bogus'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_two_answerers_in_one_run(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "report"
    ingest = _run(["ingest", "-q", str(DEMO)], data)
    assert ingest.returncode == 0, ingest.stderr
    questions = ROOT / "demo" / "questions.jsonl"
    result = _run(
        ["eval", "answers", str(questions), "--modes", "short,quotes", "--limit", "4", "--out", str(out)], data
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(4 questions, 2 answerers)" in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert list(report["modes"]) == ["short", "quotes"] and report["answer modes"] == ["short", "quotes"]
    assert report["archive"] == {"articles": 24, "chunks": 25}  # both answerers read the one archive
    assert (out / "reliability.png").exists() and (out / "report.png").exists()
