"""The dev-set slice: topical labels put their articles into the slice and their URLs into ``relevant``."""

import json
import lzma
from pathlib import Path

import pytest

from eval.devset import build_slice, load_labels
from eval.questions import load_questions


def _source(root: Path, labels: list[dict[str, object]] | None) -> Path:
    """A small corpus in the shape of ../shared/data/rtqa2023: 40 articles, 3 questions."""
    root.mkdir(parents=True, exist_ok=True)
    articles = [
        {"id": f"a{i:02}", "url": f"https://news.example/{i}", "title": f"Story {i}", "published_at": "2023-01-02",
         "authors": [], "text": f"Story number {i}." + (" The answer is Sesame." if i in (3, 4) else "")}
        for i in range(40)
    ]  # fmt: skip
    with lzma.open(root / "articles.jsonl.xz", "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(a) + "\n" for a in articles)
    questions = [
        {"id": "q1", "question": "Which seed?", "as_of": "2023-01-05", "choices": ["Sesame", "Chia"],
         "answers": ["Sesame"], "answer_urls": ["https://news.example/3", "https://news.example/4"]},
        {"id": "q2", "question": "Which city?", "as_of": "2023-01-05", "choices": [], "answers": ["Story 7"],
         "answer_urls": ["https://news.example/7"]},
        {"id": "q3", "question": "Unlabelled?", "as_of": "2023-01-05", "choices": [], "answers": ["Story 9"],
         "answer_urls": ["https://news.example/9"]},
    ]  # fmt: skip
    (root / "dev_questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")
    if labels is not None:
        (root / "dev_relevant.jsonl").write_text("".join(json.dumps(r) + "\n" for r in labels), encoding="utf-8")
    return root


LABELS = [
    {"id": "q1", "relevant_urls": ["https://news.example/3", "https://news.example/30", "https://news.example/31"]},
    {"id": "q2", "relevant_urls": ["https://news.example/32"]},
    {"id": "q3", "relevant_urls": []},
]


def _urls(out: Path) -> list[str]:
    return [json.loads(line)["url"] for line in (out / "slice.jsonl").read_text().splitlines()]


def test_labelled_articles_join_the_slice_and_the_questions_carry_them(tmp_path: Path) -> None:
    source = _source(tmp_path / "src", LABELS)
    out = tmp_path / "slice"
    description = build_slice(source, out, per_question=1, distractors=5, seed=7)
    urls = _urls(out)
    labelled = {
        "https://news.example/3",
        "https://news.example/30",
        "https://news.example/31",
        "https://news.example/32",
    }
    assert labelled <= set(urls) and len(urls) == len(set(urls))
    assert description["labelled_questions"] == 2 and description["labelled_articles"] == 4
    assert description["articles"] == len(urls)
    assert description["answer_articles"] + description["distractors"] + description["labelled_articles_added"] == len(
        urls
    )
    questions = {q.id: q for q in load_questions(out / "questions.jsonl")}
    assert questions["q1"].relevant == ("https://news.example/3", "https://news.example/30", "https://news.example/31")
    assert questions["q2"].relevant == ("https://news.example/32",)
    assert questions["q3"].relevant is None  # no label: judged by its answer string alone
    assert questions["q1"].answers == ("Sesame",)


def test_labels_only_add_to_the_slice_drawn_without_them(tmp_path: Path) -> None:
    """A slice built before the labels existed stays a subset: re-running embeds only the additions."""
    before, after = tmp_path / "before", tmp_path / "after"
    build_slice(_source(tmp_path / "plain", None), before, per_question=1, distractors=8, seed=11)
    build_slice(_source(tmp_path / "labelled", LABELS), after, per_question=1, distractors=8, seed=11)
    old, new = set(_urls(before)), set(_urls(after))
    assert old < new
    assert new - old <= {"https://news.example/30", "https://news.example/31", "https://news.example/32"}


def test_broken_label_lines_are_named(tmp_path: Path) -> None:
    source = _source(tmp_path / "src", None)
    (source / "dev_relevant.jsonl").write_text('{"id": "q1", "relevant_urls": "not a list"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"dev_relevant\.jsonl:1"):
        load_labels(source)
    assert load_labels(tmp_path / "nowhere") == {}
