"""The hand-written sentence splitter against libraries of record, on the shared corpus.

``backend.core.text.sentence_spans`` against pysbd and spaCy's parser (``en_core_web_sm``), on a seeded
sample: time per article, and the sentence ends each finds that the others do not, with examples to judge
by eye. The stemmer and the MinHash were measured otherwise (docs/text-analysis.md). pysbd comes with the
``bench`` extra; writes reports/bench/text_analysis.json.

    python -m bench.text_analysis --sample 200
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

from backend.core.text import sentence_spans
from bench.common import corpus_articles, table, write_result

Ends = Callable[[str], set[int]]


def _paragraphs(text: str) -> Iterator[tuple[int, str]]:
    at = 0
    for line in text.split("\n"):
        if line.strip():
            yield at, line
        at += len(line) + 1


def _splitters() -> dict[str, Ends]:
    import pysbd

    from backend.nlp import load_nlp

    segmenter = pysbd.Segmenter(language="en", clean=False, char_span=True)
    nlp = load_nlp()
    if nlp is None:
        raise SystemExit("spaCy's en_core_web_sm is not installed: make install")

    def ours(text: str) -> set[int]:
        return {end for _, end in sentence_spans(text)}

    def sbd(text: str) -> set[int]:
        return {at + len(p[: s.end].rstrip()) for at, p in _paragraphs(text) for s in segmenter.segment(p)}

    def spacy(text: str) -> set[int]:
        return {at + len(p[: s.end_char].rstrip()) for at, p in _paragraphs(text) for s in nlp(p).sents}

    return {"hand-written": ours, "pysbd": sbd, "spaCy parser": spacy}


def sentences(sample: int, examples: int) -> dict[str, Any]:
    articles = [a["text"] for a in corpus_articles(10**6) if a.get("text")]
    random.Random(7).shuffle(articles)
    texts = articles[:sample]
    found: dict[str, list[set[int]]] = {}
    out: dict[str, Any] = {"articles": len(texts), "splitters": {}, "against": {}}
    for name, ends in _splitters().items():
        started = time.perf_counter()
        found[name] = [ends(t) for t in texts]
        seconds = time.perf_counter() - started
        out["splitters"][name] = {
            "sentences": sum(map(len, found[name])),
            "ms_per_article": round(seconds / len(texts) * 1000, 2),
        }
    rng = random.Random(3)
    ours = found["hand-written"]
    for other in ("pysbd", "spaCy parser"):
        theirs = found[other]
        only: dict[str, list[tuple[int, int]]] = {
            "hand-written only": [(i, e) for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) for e in a - b],
            f"{other} only": [(i, e) for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) for e in b - a],
        }
        out["against"][other] = {
            "both": sum(len(a & b) for a, b in zip(ours, theirs, strict=True)),
            **{kind: len(cases) for kind, cases in only.items()},
            "examples": {
                kind: [
                    f"{texts[i][max(0, e - 50) : e]!r} || {texts[i][e : e + 30]!r}"
                    for i, e in rng.sample(cases, min(examples, len(cases)))
                ]
                for kind, cases in only.items()
            },
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=200, help="articles for the sentence splitters")
    parser.add_argument("--examples", type=int, default=12, help="disagreements shown per kind")
    args = parser.parse_args()
    print(f"sentence splitters on {args.sample} articles ...", flush=True)
    split = sentences(args.sample, args.examples)
    print(
        table(
            [("splitter", "sentences", "ms/article")]
            + [(n, str(r["sentences"]), str(r["ms_per_article"])) for n, r in split["splitters"].items()]
        )
    )
    for other, r in split["against"].items():
        print(f"\nhand-written vs {other}: both {r['both']}, " + ", ".join(f"{k} {r[k]}" for k in r["examples"]))
        for kind, shown in r["examples"].items():
            print(f"  {kind}:", *shown, sep="\n    ")
    print(write_result("text_analysis", {"sentences": split}))


if __name__ == "__main__":
    main()
