"""Each loader on small files written by the test."""

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.loaders import FORMATS, Format, LoadError, RawRecord, iter_files, load_file, register, suffixes
from ingest.loaders.types import Loaded
from ingest.normalize import article_from_record


def _load(path: Path) -> tuple[list[RawRecord], list[LoadError]]:
    items = [item for item, _ in load_file(path)]
    return [i for i in items if isinstance(i, RawRecord)], [i for i in items if isinstance(i, LoadError)]


def test_json_array_and_articles_object(tmp_path: Path) -> None:
    array = tmp_path / "a.json"
    array.write_text(json.dumps([{"title": "A", "text": "a"}, 7, {"title": "B", "text": "b"}]), encoding="utf-8")
    wrapped = tmp_path / "b.json"
    wrapped.write_text(json.dumps({"articles": [{"title": "C", "text": "c"}]}), encoding="utf-8")
    records, errors = _load(array)
    assert [r.data["title"] for r in records] == ["A", "B"]
    assert [e.message for e in errors] == ["item 2: expected a JSON object, got int"]
    assert [r.data["title"] for r in _load(wrapped)[0]] == ["C"]


def test_csv_columns_are_mapped_by_common_names(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    path.write_text(
        "Headline,Body,Link,Date,Byline,Outlet,Section\n"
        'Port reopens,"The port reopened on Monday.\nShips queued.",'
        'https://e.org/1,"Oct. 4, 2023",By Ann Lee,Harbor Post,biz\n'
        "Broken row,too,few\n"
        'Second,"Another story.",https://e.org/2,2023-10-05,"Bo Chen, Cy Dee",Harbor Post,\n',
        encoding="utf-8",
    )
    records, errors = _load(path)
    assert [e.line for e in errors] == [4] and "expected 7 columns" in errors[0].message
    article, _ = article_from_record(records[0].data)
    assert (article.title, article.url, article.source) == ("Port reopens", "https://e.org/1", "Harbor Post")
    assert article.text == "The port reopened on Monday.\n\nShips queued."
    assert article.published_at is not None and article.published_at.date().isoformat() == "2023-10-04"
    assert article.authors == ("Ann Lee",) and article.metadata == {"section": "biz"}
    assert article_from_record(records[1].data)[0].authors == ("Bo Chen", "Cy Dee")


def test_markdown_front_matter_and_plain_text_titles(tmp_path: Path) -> None:
    md = tmp_path / "story.md"
    md.write_text(
        "---\ntitle: Front title\ndate: 2023-10-04\nsource: Valley Courier\n---\n# Heading\nBody.", encoding="utf-8"
    )
    txt = tmp_path / "story.txt"
    txt.write_text("\n\nFirst line is the title\nThe body.\n", encoding="utf-8")
    (md_record,), _ = _load(md)
    assert md_record.data["title"] == "Front title" and md_record.data["source"] == "Valley Courier"
    assert md_record.data["text"] == "# Heading\nBody."
    (txt_record,), _ = _load(txt)
    assert (txt_record.data["title"], txt_record.data["text"]) == ("First line is the title", "The body.")


HTML = """<!doctype html><html><head><title>Page title | Example News</title>
<link rel="canonical" href="https://example.org/2023/10/04/story">
<meta name="author" content="Ann Lee"><meta property="og:site_name" content="Example News">
<meta property="article:published_time" content="2023-10-04T10:00:00+03:00">
<meta property="og:title" content="Joint patrols begin in the valley"></head>
<body><nav><a href="/">Home</a> | <a href="/world">World</a> | <a href="/sport">Sport</a></nav>
<article><h1>Joint patrols begin in the valley</h1>
<p>Soldiers and police began joint patrols in the valley villages on Wednesday, officials said.</p>
<p>The patrols will run at night, when most attacks on farmers have taken place this year.</p>
<p>Residents said they hoped the patrols would let families return to their homes before winter.</p>
</article><footer>Copyright 2023 Example News. All rights reserved.</footer></body></html>"""


def test_html_page_main_text_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(HTML, encoding="utf-8")
    (record,), errors = _load(path)
    assert errors == []
    article, _ = article_from_record(record.data)
    assert article.title == "Joint patrols begin in the valley"
    assert article.url == "https://example.org/2023/10/04/story"
    assert article.source == "Example News" and article.authors == ("Ann Lee",)
    assert article.published_at is not None and article.published_at.date().isoformat() == "2023-10-04"
    assert article.text.startswith("Soldiers and police began joint patrols")
    assert "Home" not in article.text and "Copyright" not in article.text


RSS = """<?xml version="1.0"?><rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Harbor Post</title><link>https://harbor.example</link>
<item><title>Strike ends</title><link>https://harbor.example/strike</link><guid>strike-1</guid>
<pubDate>Fri, 19 May 2023 18:00:00 +0200</pubDate><author>desk@harbor.example (Miguel Torres)</author>
<description>Short teaser.</description>
<content:encoded><![CDATA[<p>The strike ended on Friday.</p>
<p>Workers accepted a 7 percent raise.</p>]]></content:encoded></item>
<item><title>Empty</title><link>https://harbor.example/empty</link></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">
<title>Valley Courier</title><id>urn:valley</id><updated>2023-07-18T12:00:00Z</updated>
<entry><title>Heat record</title><id>urn:valley:heat</id><link href="https://valley.example/heat"/>
<updated>2023-07-18T12:00:00Z</updated><author><name>Priya Menon</name></author>
<summary>Temperatures reached 46.2 degrees in Ardenvale.</summary></entry></feed>"""


def test_rss_full_content_and_atom_summary_flagged(tmp_path: Path) -> None:
    rss = tmp_path / "feed.rss"
    rss.write_text(RSS, encoding="utf-8")
    atom = tmp_path / "feed.xml"  # .xml is sniffed
    atom.write_text(ATOM, encoding="utf-8")
    records, errors = _load(rss)
    assert len(records) == 1 and "Empty" in errors[0].message
    article, _ = article_from_record(records[0].data)
    assert (article.id, article.source, article.url) == ("strike-1", "Harbor Post", "https://harbor.example/strike")
    assert article.text == "The strike ended on Friday.\n\nWorkers accepted a 7 percent raise."
    assert article.published_at is not None and article.published_at.isoformat() == "2023-05-19T16:00:00+00:00"
    assert article.metadata["summary_only"] is False
    (atom_record,), _ = _load(atom)
    atom_article, _ = article_from_record(atom_record.data)
    assert atom_article.metadata["summary_only"] is True and atom_article.authors == ("Priya Menon",)
    assert atom_article.source == "Valley Courier"


def test_content_sniffing_for_files_without_a_telling_extension(tmp_path: Path) -> None:
    jsonl = tmp_path / "export"
    jsonl.write_text('{"title": "T", "text": "x"}\n', encoding="utf-8")
    unknown = tmp_path / "notes"
    unknown.write_bytes(b"\x00\x01binary")
    assert len(_load(jsonl)[0]) == 1
    assert "not a recognised article format" in _load(unknown)[1][0].message


def test_stdin_reads_json_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.TextIOWrapper(io.BytesIO(b'{"title": "From stdin", "text": "x"}\nnot json\n'))
    monkeypatch.setattr(sys, "stdin", stream)
    records, errors = _load(Path("-"))
    assert records[0].data["title"] == "From stdin" and errors[0].line == 2


def test_folders_skip_hidden_and_foreign_files_but_named_files_must_load(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text("{}", encoding="utf-8")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "b.jsonl").write_text("{}", encoding="utf-8")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8")
    assert list(iter_files([tmp_path])) == [tmp_path / "a.jsonl"]
    (error,) = iter_files([tmp_path / "photo.jpg"])
    assert isinstance(error, LoadError) and "unsupported file type '.jpg'" in str(error)


def test_byte_offsets_reach_the_file_size(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps({"text": f"t{i}"}) + "\n" for i in range(5)), encoding="utf-8")
    offsets = [offset for _, offset in load_file(path)]
    assert offsets == sorted(offsets) and offsets[-1] == path.stat().st_size


def test_every_suffix_belongs_to_one_format_and_is_read_by_it_or_by_sniffing(tmp_path: Path) -> None:
    assert len(suffixes()) == len(set(suffixes()))
    assert all(s == s.lower() and s.startswith(".") for s in suffixes())
    assert {".text", ".markdown", ".ndjson", ".tsv", ".htm", ".atom", ".xml"} <= set(suffixes())
    for fmt in FORMATS.values():
        assert fmt.loader is not None or fmt.suffixes == (".xml",), fmt.name
        for suffix in fmt.suffixes:
            named = tmp_path / f"story{suffix.upper()}"  # suffixes are matched without regard to case
            named.write_text('{"title": "T", "text": "Body."}\n', encoding="utf-8")
            assert list(iter_files([named])) == [named]
    with pytest.raises(ValueError, match="already registered"):
        register(Format("notes", "notes", (".txt",), FORMATS["text"].loader))


def test_a_registered_format_is_read_by_its_suffix_and_sniffed_when_it_announces_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def load_wire(path: Path) -> Iterator[Loaded]:
        title, _, text = path.read_text(encoding="utf-8").removeprefix("%WIRE ").partition("\n")
        yield Loaded({"title": title, "text": text}, 1, path.stat().st_size)

    monkeypatch.setattr("ingest.loaders.FORMATS", dict(FORMATS))  # the shipped registry back after the test
    register(Format("wire", "wire copy", (".wire",), load_wire, lambda head: head.startswith(b"%wire")))
    story = "%WIRE Port reopens\nThe port reopened on Monday."
    (tmp_path / "a.wire").write_text(story, encoding="utf-8")
    (tmp_path / "b.xml").write_text(story, encoding="utf-8")
    (tmp_path / "c").write_text(story, encoding="utf-8")
    assert list(iter_files([tmp_path])) == [tmp_path / "a.wire", tmp_path / "b.xml"]  # no suffix: named only
    for name in ("a.wire", "b.xml", "c"):
        records, errors = _load(tmp_path / name)
        assert not errors and [r.data["title"] for r in records] == ["Port reopens"], name
