"""A folder of good articles with 50 broken or hostile files among them (empty, binary, invalid UTF-8,
NUL bytes, truncated JSON, a 50 MB article, a feed of 10,000 items, deep nesting): every good article is
ingested, every broken file is reported by name, and the ingest process's peak memory stays within
512 MiB of the same ingest without the hostile files.

Found and fixed by this test: JSON nested thousands deep ended the whole run with a ``RecursionError``; a
file of random bytes named ``.txt`` or ``.md`` was stored as a "story" of garbage; an empty JSON Lines
file was passed over without a word; a 50 MB article was cleaned whole before being cut (1 GB peak).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import BYLINE, byline_env, corpus_records, progress, record_figures

pytestmark = pytest.mark.slow

MEMORY_MARGIN = 512 * 2**20
SUFFIXES = (".txt", ".md", ".jsonl", ".json", ".csv", ".html", ".rss", ".xml")


def _synthetic(count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        rng = random.Random(i)
        text = "\n\n".join(
            f"Councillors in ward {rng.randint(1, 900)} of Lowmarsh voted {rng.randint(3, 40)} to "
            f"{rng.randint(0, 9)} on measure {i}-{p}, which funds {rng.choice(['buses', 'libraries', 'drains'])}."
            for p in range(4)
        )
        out.append({"text": text})
    return out


def _good_records(count: int) -> list[dict[str, Any]]:
    """Distinct texts (an exact copy would be stored once), each with a title of its own."""
    if count <= 200:
        raw = _synthetic(count)
    else:
        raw, seen = [], set()
        for record in corpus_records(count * 2, max_chars=1500):
            key = " ".join(record["text"].split()).lower()
            if key not in seen and len(record["text"]) > 200:
                seen.add(key)
                raw.append(record)
            if len(raw) == count:
                break
    return [
        {
            "id": f"good-{i}",
            "title": f"Good story {i}",
            "text": r["text"],
            "source": "Hostile Test Wire",
            "published_at": f"2023-{i % 12 + 1:02d}-{i % 27 + 1:02d}",
        }
        for i, r in enumerate(raw)
    ]


def _write_good(folder: Path, records: list[dict[str, Any]]) -> None:
    """One article a file, in every format the ingest reads, some with repairable damage."""
    for i, r in enumerate(records):
        kind = i % 8
        name = folder / f"good-{i:04d}"
        paragraphs = r["text"].split("\n\n")
        if kind == 0:
            name.with_suffix(".jsonl").write_text(json.dumps(r) + "\n", encoding="utf-8")
        elif kind == 1:
            name.with_suffix(".json").write_bytes(b"\xef\xbb\xbf" + json.dumps(r).encode())  # with a BOM
        elif kind == 2:
            name.with_suffix(".txt").write_bytes(f"{r['title']}\r\n{r['text']}".encode())  # CRLF
        elif kind == 3:
            front = f"---\ntitle: {r['title']}\nsource: {r['source']}\ndate: {r['published_at']}\nid: {r['id']}\n---\n"
            name.with_suffix(".md").write_text(front + r["text"], encoding="utf-8")
        elif kind == 4:
            body = "".join(f"<p>{p}</p>" for p in paragraphs)
            page = (f"<!doctype html><html><head><title>{r['title']}</title></head><body><article>"
                    f"<h1>{r['title']}</h1>{body}</article></body></html>")  # fmt: skip
            name.with_suffix(".html").write_text(page, encoding="utf-8")
        elif kind == 5:
            item = (f"<item><title>{r['title']}</title><guid>{r['id']}</guid>"
                    f"<description><![CDATA[{r['text']}]]></description></item>")  # fmt: skip
            feed = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {i}</title>{item}</channel></rss>'
            name.with_suffix(".rss").write_text(feed, encoding="utf-8")
        elif kind == 6:
            cell = r["text"].replace('"', '""')
            name.with_suffix(".csv").write_text(f'id,title,text\n{r["id"]},{r["title"]},"{cell}"\n', encoding="utf-8")
        else:  # NUL bytes and invalid UTF-8 inside otherwise good text: repaired, not refused
            damaged = json.dumps(r).encode().replace(b". ", b". \xff\xfe", 2).replace(b" on ", b" \\u0000on ", 1)
            name.with_suffix(".jsonl").write_bytes(damaged + b"\n")


def _write_broken(folder: Path) -> dict[str, str]:
    """The 50 broken files, each with what it is."""
    rng = random.Random(50)
    deep = 100_000
    item = "<item><title>Empty item {n}</title><link>https://feed.example/{n}</link></item>"
    files: dict[str, tuple[str, bytes]] = {
        # empty
        **{f"empty{s}": ("empty", b"") for s in (*SUFFIXES, ".atom")},
        "blank-lines.jsonl": ("empty", b"\n\n  \n"),
        "header-only.csv": ("empty", b"title,text\n"),
        "empty-array.json": ("empty", b"[]"),
        # binary
        **{f"binary{s}": ("binary", rng.randbytes(4096)) for s in SUFFIXES},
        "png-named.txt": ("binary", b"\x89PNG\r\n\x1a\n" + rng.randbytes(2048)),
        "gzip-named.jsonl": ("binary", b"\x1f\x8b\x08\x00" + rng.randbytes(2048)),
        # invalid UTF-8 and NUL bytes with nothing readable left
        "invalid-utf8.txt": ("invalid UTF-8", b"\xff\xfe\xfd\xc3\x28" * 400),
        "invalid-utf8-text.jsonl": ("invalid UTF-8", b'{"title": "x", "text": "\xff\xfe\xc3\x28"}\n'),
        "nul-only.txt": ("NUL bytes", b"\x00" * 4096),
        "nul-text.jsonl": ("NUL bytes", b'{"title": "nul", "text": "\\u0000\\u0000\\u0000"}\n'),
        "nul-page.html": ("NUL bytes", b"<html><body>" + b"\x00" * 4000 + b"</body></html>"),
        # truncated JSON
        "truncated.json": ("truncated JSON", b'[{"id": "t1", "title": "cut", "text": "a story cut off mid'),
        "truncated-array.json": ("truncated JSON", b'[{"id": "t2", "text": "one"}, {"id": "t3", "tex'),
        "truncated-line.jsonl": ("truncated JSON", b'{"id": "t4", "title": "cut", "text": "cut off'),
        "truncated-object.json": ("truncated JSON", b'{"articles": [{"id": "t5", "text": "x"}'),
        # deep nesting
        "deep.json": ("deep nesting", b"[" * deep + b"]" * deep),
        "deep.jsonl": ("deep nesting", b'{"a":' * deep + b"1" + b"}" * deep + b"\n"),
        "deep.html": ("deep nesting", b"<html><body>" + b"<div>" * deep + b"</div>" * deep + b"</body></html>"),
        "deep.rss": ("deep nesting", b"<rss><channel>" + b"<x>" * deep + b"</x>" * deep + b"</channel></rss>"),
        # huge
        "feed-10000-items.rss": ("10,000-item feed", (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Flood</title>'
            + "".join(item.format(n=n) for n in range(10_000)) + "</channel></rss>").encode()),
        # malformed in other ways
        "wrong-columns.csv": ("malformed", b"title,text\na,b,c,d\ne,f,g,h\n"),
        "bad-front-matter.md": ("malformed", b"---\ntitle: [unclosed\n---\nBody text here.\n"),
        "script-only.html": ("malformed", b"<html><body><script>alert(1)</script></body></html>"),
        "numbers.json": ("malformed", b"[1, 2, 3]"),
        "no-text.json": ("malformed", b'{"title": "A title and nothing else"}'),
        "title-only.txt": ("malformed", b"Just a title line\n"),
        "not-xml.rss": ("malformed", b"this is not a feed at all"),
        "no-entries.atom": ("malformed", b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title></feed>'),
        "plain.xml": ("malformed", b"just some words in an xml file"),
        "null.json": ("malformed", b"null"),
        "array-line.jsonl": ("malformed", b'["not", "an", "object"]\n'),
        "head-only.htm": ("malformed", b"<html><head><title>Only a head</title></head></html>"),
        "deep-front-matter.md": ("deep nesting", b"---\ntitle: " + b"[" * deep + b"\n---\nBody.\n"),
    }  # fmt: skip
    # A 50 MB article: kept, cut to the configured size, with a warning naming the file.
    big = {"id": "fifty-mb", "title": "Fifty megabytes", "text": "The harbour flooded again last night. " * 1_320_000}
    files["fifty-mb.jsonl"] = ("50 MB article", json.dumps(big).encode() + b"\n")
    assert len(files) == 50, len(files)
    for name, (_, data) in files.items():
        (folder / name).write_bytes(data)
    return {name: kind for name, (kind, _) in files.items()}


def _ingest(folder: Path, data: Path) -> tuple[subprocess.CompletedProcess[str], int, float]:
    """Run ``byline ingest`` on the folder; its output, peak resident memory (bytes) and seconds.

    The process is reaped with ``wait4`` for its own peak (``RUSAGE_CHILDREN`` would be the largest of all)."""
    started = time.monotonic()
    process = subprocess.Popen(
        [*BYLINE, "ingest", "-q", str(folder)], env=byline_env(data), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    output: dict[str, bytes] = {}
    readers = [
        threading.Thread(target=lambda name=name, pipe=pipe: output.__setitem__(name, pipe.read()))
        for name, pipe in (("out", process.stdout), ("err", process.stderr))
    ]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    out, err = (output[k].decode("utf-8", errors="replace") for k in ("out", "err"))
    done = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return done, usage.ru_maxrss * 1024, time.monotonic() - started


def _hostile(tmp_path: Path, good_count: int) -> None:
    good = _good_records(good_count)
    baseline_dir, hostile_dir = tmp_path / "baseline", tmp_path / "hostile"
    baseline_dir.mkdir()
    hostile_dir.mkdir()
    _write_good(baseline_dir, good)
    _write_good(hostile_dir, good)
    broken = _write_broken(hostile_dir)
    progress(f"{good_count} good files and {len(broken)} broken ones")

    baseline, baseline_peak, baseline_s = _ingest(baseline_dir, tmp_path / "data-baseline")
    assert baseline.returncode == 0, baseline.stderr[-2000:]
    progress(f"baseline (good files only): peak {baseline_peak / 2**20:.0f} MiB, {baseline_s:.0f} s")
    run, peak, seconds = _ingest(hostile_dir, tmp_path / "data-hostile")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    progress(f"with the broken files: peak {peak / 2**20:.0f} MiB, {seconds:.0f} s")

    summary = run.stdout
    counts = summary.splitlines()[1]
    # Every good article stored, and the 50 MB one (cut): nothing good was lost to its neighbours.
    assert counts.startswith(f"articles: {good_count + 1} new, 0 updated"), counts
    reported = {
        line.split(": ", 1)[1].split(":", 1)[0]
        for line in summary.splitlines()
        if line.startswith(("error: ", "warning: "))
    }
    reported_names = {Path(r).name for r in reported}
    unreported = sorted(name for name in broken if name not in reported_names)
    assert not unreported, f"broken files not reported by name: {unreported}"
    errors = [line for line in summary.splitlines() if line.startswith("error: ")]
    assert not [line for line in errors if "/good-" in line], "a good file was refused"
    assert "fifty-mb.jsonl:1: text of 50,160,000 characters cut to 200,000" in summary, summary[-3000:]
    assert summary.count("feed-10000-items.rss: entry") == 10_000
    assert peak <= baseline_peak + MEMORY_MARGIN, (peak, baseline_peak)

    record_figures(
        f"hostile_files_{good_count + 50}",
        {
            "good_files": good_count,
            "broken_files": len(broken),
            "broken_kinds": sorted(set(broken.values())),
            "good_articles_stored": good_count + 1,
            "error_lines": len(errors),
            "broken_files_unreported": len(unreported),
            "peak_rss_mib": round(peak / 2**20),
            "baseline_peak_rss_mib": round(baseline_peak / 2**20),
            "seconds": round(seconds, 1),
            "baseline_seconds": round(baseline_s, 1),
        },
    )


def test_fifty_broken_files_among_good_ones(tmp_path: Path) -> None:
    _hostile(tmp_path, good_count=150)


@pytest.mark.soak
def test_fifty_broken_files_among_a_thousand(tmp_path: Path) -> None:
    _hostile(tmp_path, good_count=950)
