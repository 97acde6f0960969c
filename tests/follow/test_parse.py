"""Feeds, sitemaps and pages read by ingest.follow.parse, including the hostile ones."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.follow.parse import ParseError, canonical_url, page_record, parse_source
from tests.follow.servers import Item, atom, news_sitemap, rss, sitemap_index

FEED_URL = "https://harbor.example/feeds/all.xml"
WHEN = datetime(2024, 5, 19, 16, 0, tzinfo=UTC)


def test_rss_with_full_content_keeps_paragraphs_and_canonical_links() -> None:
    body = rss(
        [
            Item(
                "Strike ends",
                "https://Harbor.Example:443/news/strike?utm_source=rss&id=7#top",
                guid="strike-1",
                date=WHEN,
                author="Miguel Torres",
                summary="Short teaser.",
                content="<p>The strike ended on Friday.</p>\n<p>Workers accepted a <b>7 percent</b> raise.</p>"
                "<script>track()</script>",
            )
        ],
        ttl=30,
    )
    parsed = parse_source(body, FEED_URL)
    assert (parsed.kind, parsed.title, parsed.ttl_s, parsed.sitemaps) == ("rss", "Harbor Post", 1800.0, [])
    (entry,) = parsed.entries
    assert entry.url == "https://harbor.example/news/strike?id=7"
    assert (entry.guid, entry.title, entry.authors) == ("strike-1", "Strike ends", ("Miguel Torres",))
    assert entry.published == "Sun, 19 May 2024 16:00:00 +0000"
    assert entry.text == "The strike ended on Friday.\n\nWorkers accepted a 7 percent raise."
    assert entry.summary_only is False and entry.outlet is None


def test_summary_only_rss_is_flagged_and_keeps_the_summary() -> None:
    parsed = parse_source(
        rss([Item("Teaser", "/news/teaser", summary="<p>Only the first lines&hellip;</p>")]), FEED_URL
    )
    (entry,) = parsed.entries
    assert entry.summary_only is True and entry.text == "Only the first lines…"
    assert entry.url == "https://harbor.example/news/teaser"  # relative to the feed's URL


def test_atom_content_and_summary() -> None:
    body = atom(
        [
            Item(
                "Heat record", "https://valley.example/heat", date=WHEN, author="Priya Menon", content="<p>46.2 C.</p>"
            ),
            Item("Rain", "https://valley.example/rain", summary="Rain at last."),
        ]
    )
    parsed = parse_source(body, "https://valley.example/atom")
    assert (parsed.kind, parsed.title, parsed.ttl_s) == ("atom", "Valley Courier", None)
    heat, rain = parsed.entries
    assert (heat.text, heat.summary_only, heat.authors) == ("46.2 C.", False, ("Priya Menon",))
    assert heat.published == "2024-05-19T16:00:00+00:00"
    assert (rain.text, rain.summary_only, rain.guid) == ("Rain at last.", True, "https://valley.example/rain")


def test_atom_plain_text_content_keeps_its_angle_brackets() -> None:
    body = (
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Maths</title><id>urn:m</id>'
        b'<entry><title>Inequality</title><id>urn:m:1</id><content type="text">if a &lt; b and b &gt; c</content>'
        b"</entry></feed>"
    )
    (entry,) = parse_source(body, "https://e.org/atom").entries
    assert (entry.text, entry.summary_only, entry.url) == ("if a < b and b > c", False, None)


def test_rss_with_no_items_is_an_empty_feed_and_sy_update_period_is_read() -> None:
    body = (
        b'<?xml version="1.0"?><rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">'
        b"<channel><title>Quiet</title><sy:updatePeriod>hourly</sy:updatePeriod>"
        b"<sy:updateFrequency>4</sy:updateFrequency></channel></rss>"
    )
    parsed = parse_source(body, FEED_URL)
    assert (parsed.kind, parsed.title, parsed.entries, parsed.ttl_s) == ("rss", "Quiet", [], 900.0)


def test_news_sitemap_gives_urls_titles_dates_and_the_outlet() -> None:
    body = news_sitemap(
        [
            Item("Port reopens", "https://harbor.example/port?fbclid=x", date="2024-05-19T16:00:00Z"),
            Item("Two", "/two"),
        ],
        publication="Harbor Post",
    )
    parsed = parse_source(body, "https://harbor.example/news-sitemap.xml")
    assert parsed.kind == "sitemap" and parsed.sitemaps == []
    port, two = parsed.entries
    assert (port.url, port.title, port.published, port.outlet) == (
        "https://harbor.example/port",
        "Port reopens",
        "2024-05-19T16:00:00Z",
        "Harbor Post",
    )
    assert (port.text, port.summary_only, port.authors) == ("", True, ())
    assert two.url == "https://harbor.example/two"


def test_plain_sitemap_uses_lastmod() -> None:
    body = (
        b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc>https://e.org/a</loc><lastmod>2024-01-02</lastmod></url><url><loc> </loc></url></urlset>"
    )
    (entry,) = parse_source(body, "https://e.org/sitemap.xml").entries
    assert (entry.url, entry.published, entry.title, entry.outlet) == ("https://e.org/a", "2024-01-02", "", None)


def test_sitemap_index_lists_its_sitemaps_absolute() -> None:
    body = sitemap_index(["https://e.org/news-1.xml", "/news-2.xml"])
    parsed = parse_source(body, "https://e.org/index.xml")
    assert (parsed.kind, parsed.entries) == ("sitemap_index", [])
    assert parsed.sitemaps == ["https://e.org/news-1.xml", "https://e.org/news-2.xml"]


def test_malformed_xml_without_entries_is_an_error_but_with_entries_is_read() -> None:
    with pytest.raises(ParseError, match="not a feed"):
        parse_source(b'<?xml version="1.0"?><rss version="2.0"><channel><title>Broken</ti', FEED_URL)
    bozo = rss([Item("Still read", "https://e.org/1", content="<p>Body.</p>")]).replace(
        b"</channel>", b"<oops></channel>"
    )
    parsed = parse_source(bozo, FEED_URL)
    assert [e.title for e in parsed.entries] == ["Still read"]
    with pytest.raises(ParseError, match="sitemap"):
        parse_source(b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><lo', FEED_URL)


def test_html_empty_and_foreign_xml_are_errors() -> None:
    page = b"<!DOCTYPE html>\n<html><head><title>Home</title></head><body><p>Hello</p></body></html>"
    with pytest.raises(ParseError, match="HTML page"):
        parse_source(page, FEED_URL)
    with pytest.raises(ParseError, match="HTML page"):
        parse_source(b"<html><body>no doctype</body></html>", FEED_URL)
    with pytest.raises(ParseError, match="empty"):
        parse_source(b"  \n", FEED_URL)
    with pytest.raises(ParseError, match="not a feed"):
        parse_source(b'<?xml version="1.0"?><config><debug>true</debug></config>', FEED_URL)


LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE {root} [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
 <!ENTITY xxe SYSTEM "file://{secret}">
]>
"""


@pytest.mark.parametrize("kind", ["rss", "sitemap"])
def test_entity_bombs_and_external_entities_do_not_expand(kind: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-PAYLOAD", encoding="utf-8")
    if kind == "rss":
        doc = LAUGHS.format(root="rss", secret=secret) + (
            '<rss version="2.0"><channel><title>&lol9;</title>'
            "<item><title>Bomb &lol9;</title><link>https://e.org/1</link>"
            "<description>&xxe; and &lol9;</description></item></channel></rss>"
        )
    else:
        doc = LAUGHS.format(root="urlset", secret=secret) + (
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            "<url><loc>https://e.org/&lol9;</loc></url><url><loc>https://e.org/&xxe;</loc></url>"
            "<url><loc>https://e.org/plain</loc></url></urlset>"
        )
    try:
        parsed = parse_source(doc.encode(), "https://e.org/feed")
    except ParseError:
        return  # refusing is fine too
    everything = repr(parsed)
    assert "TOP-SECRET-PAYLOAD" not in everything
    assert "lollol" not in everything and len(everything) < 5_000


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        (
            "HTTPS://News.Example.COM:443/World/Story?id=3&utm_source=x&UTM_Medium=y#comments",
            "https://news.example.com/World/Story?id=3",
        ),
        ("http://e.org:80/a", "http://e.org/a"),
        ("http://e.org:8080/a", "http://e.org:8080/a"),
        ("https://e.org/a?b=2&a=1&fbclid=z&gclid=q", "https://e.org/a?b=2&a=1"),
        ("https://e.org/a?utm_campaign=only", "https://e.org/a"),
        ("https://e.org/p%20q?x=%2F", "https://e.org/p%20q?x=%2F"),
        ("https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"),
        ("  https://e.org/trailing/  ", "https://e.org/trailing/"),
    ],
)
def test_canonical_url(given: str, canonical: str) -> None:
    assert canonical_url(given) == canonical
    assert canonical_url(canonical) == canonical  # idempotent


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Joint patrols begin | Example News</title>
<link rel="canonical" href="https://example.org/2023/10/04/patrols?utm_source=twitter">
<meta name="author" content="Ann Lee"><meta property="og:site_name" content="Example News">
<meta property="article:published_time" content="2023-10-04T10:00:00+03:00">
<meta property="og:title" content="Joint patrols begin in the valley"></head>
<body><header><nav><a href="/">Home</a> | <a href="/world">World</a> | <a href="/sport">Sport</a></nav></header>
<main><article><h1>Joint patrols begin in the valley</h1><p class="byline">By Ann Lee</p>
<p>Soldiers and police began joint patrols in the valley villages on Wednesday, officials said.</p>
<p>The patrols will run at night, when most attacks on farmers have taken place this year.</p>
<p>Residents said they hoped the patrols would let families return to their homes before winter.</p>
</article><aside>Most read: <a href="/x">Ten things about cheese</a></aside></main>
<footer>Copyright 2023 Example News. All rights reserved.</footer></body></html>"""


def test_page_record_from_a_real_looking_page() -> None:
    record = page_record(PAGE.encode(), "https://example.org/2023/10/04/patrols?utm_medium=feed")
    assert record is not None
    assert record["title"] == "Joint patrols begin in the valley"
    assert record["url"] == "https://example.org/2023/10/04/patrols"
    assert (record["source"], record["authors"], record["published_at"]) == ("Example News", "Ann Lee", "2023-10-04")
    assert record["text"].startswith("Soldiers and police began joint patrols")
    assert "Copyright" not in record["text"] and "Home" not in record["text"]


def test_page_record_is_none_without_article_text_and_falls_back_to_the_fetched_url() -> None:
    assert (
        page_record(b"<html><head><title>Gone</title></head><body><div></div></body></html>", "https://e.org/") is None
    )
    bare = "<html><body><article>" + "<p>A paragraph of real article text that goes on for a while.</p>" * 5
    record = page_record((bare + "</article></body></html>").encode(), "https://e.org/bare?gclid=1")
    assert record is not None and record["url"] == "https://e.org/bare"
