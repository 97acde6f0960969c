"""What every ``ArticleStore`` (the article registry) does.

An implementation's suite subclasses ``ArticleStoreContract`` and provides ``make_store``: a callable that
opens the test's registry, empty at first; each call opens the same registry again, as another process would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from backend.core.protocols import ArticleStore
from backend.core.types import ArticleRecord, Copy

MakeStore = Callable[[], ArticleStore]


def record(
    article_id: str, published_at: str | None = None, source: str | None = "Reuters", **fields: object
) -> ArticleRecord:
    values: dict[str, object] = {
        "id": article_id,
        "text_hash": f"text-{article_id}",
        "content_hash": f"content-{article_id}",
        "cluster_id": article_id,
        "title": f"Title of {article_id}",
        "url": f"https://example.org/{article_id}",
        "source": source,
        "published_at": published_at,
        "origin": f"/feeds/{article_id}.jsonl",
        "chunks": 2,
        "signature": np.arange(8, dtype=np.uint32) + len(article_id),
        **fields,
    }
    return ArticleRecord(**values)  # type: ignore[arg-type]


ARTICLES = [
    record("a1", "2023-10-04T00:00:00+00:00", title="Sector commander named", origin="/feeds/north/a.jsonl"),
    record("a2", "2024-02-01T00:00:00+00:00", source="The Verge", origin="/feeds/north/b.jsonl"),
    record("a3", None, source="Reuters", origin="/feeds/northern.jsonl"),
    record("a4", "2023-01-10T00:00:00+00:00", source=None, signature=None),
]
COPIES = [
    Copy("c1", "a1", "https://wire.example/c1", "Wire", "/feeds/wire.jsonl"),
    Copy("c2", "a1", "https://other.example/c2", "Other", None),
    Copy("c3", "a2", None, "Wire", None),
]
BANDS = {"a1": [(0, 11), (1, 12)], "a2": [(0, 21)], "a3": [(1, 12)]}


def filled(make_store: MakeStore) -> ArticleStore:
    registry = make_store()
    registry.save(ARTICLES, BANDS, COPIES)
    return registry


def same(a: ArticleRecord, b: ArticleRecord) -> bool:
    """Equal records, the signature compared as numbers."""
    signatures = (a.signature, b.signature)
    if any(s is None for s in signatures):
        return a == b
    return replace(a, signature=None) == replace(b, signature=None) and np.array_equal(*signatures)  # type: ignore[arg-type]


class ArticleStoreContract:
    def test_it_is_an_article_store(self, make_store: MakeStore) -> None:
        assert isinstance(make_store(), ArticleStore)

    def test_an_empty_registry(self, make_store: MakeStore) -> None:
        registry = make_store()
        assert registry.count() == 0 and registry.get(["a1"]) == {} and registry.get([]) == {}
        assert registry.span() == (0, None, None) and registry.outlets() == {} and registry.last_ingested() is None
        assert registry.find("a1") == (None, None) and registry.listing(10) == (0, [])

    def test_saved_articles_come_back_as_saved(self, make_store: MakeStore) -> None:
        filled(make_store)
        found = make_store().get(["a1", "a4", "missing"])
        assert set(found) == {"a1", "a4"}
        assert same(found["a1"], ARTICLES[0]) and same(found["a4"], ARTICLES[3])
        assert make_store().by_text_hash(["text-a2", "text-none"]) == {"text-a2": "a2"}

    def test_saving_again_replaces_by_id(self, make_store: MakeStore) -> None:
        registry = filled(make_store)
        changed = replace(ARTICLES[0], title="Renamed", content_hash="content-2", chunks=5)
        registry.save([changed], {"a1": [(7, 7)]}, [])
        assert registry.count() == len(ARTICLES) and same(registry.get(["a1"])["a1"], changed)
        assert registry.lsh_candidates([(0, 11)]) == {}  # its old bands went with the old record
        assert set(registry.lsh_candidates([(7, 7)])) == {"a1"}

    def test_an_article_or_its_copy_is_found_by_id_or_url(self, make_store: MakeStore) -> None:
        registry = filled(make_store)
        assert registry.find("a2") == ("a2", None) and registry.find("https://example.org/a2") == ("a2", None)
        assert registry.find("c1") == (None, COPIES[0])
        assert registry.find("https://other.example/c2") == (None, COPIES[1])
        assert registry.find("nothing") == (None, None)
        assert registry.copies(["a1", "a2", "a3"]) == {"a1": COPIES[:2], "a2": COPIES[2:]}

    def test_lsh_candidates_share_a_bucket(self, make_store: MakeStore) -> None:
        registry = filled(make_store)
        found = registry.lsh_candidates([(1, 12), (5, 5)])
        assert set(found) == {"a1", "a3"} and np.array_equal(found["a1"], ARTICLES[0].signature)  # type: ignore[arg-type]
        assert registry.lsh_candidates([]) == {} and registry.lsh_candidates([(0, 12)]) == {}

    def test_deleting_an_article_takes_its_copies_and_buckets(self, make_store: MakeStore) -> None:
        registry = filled(make_store)
        registry.delete(["a1", "missing"])
        registry.delete([])
        assert registry.count() == 3 and registry.get(["a1"]) == {}
        assert registry.find("c1") == (None, None) and registry.copies(["a1"]) == {}
        assert set(registry.lsh_candidates([(1, 12)])) == {"a3"}
        registry.delete_copy("c3")
        assert registry.copies(["a2"]) == {} and registry.count() == 3

    def test_articles_are_found_by_the_file_or_folder_they_came_from(self, make_store: MakeStore) -> None:
        registry = filled(make_store)
        assert registry.ids_from_origins(["/feeds/north"]) == {"a1", "a2"}  # not /feeds/northern.jsonl
        assert registry.ids_from_origins(["/feeds/north/"]) == {"a1", "a2"}
        assert registry.ids_from_origins(["/feeds/northern.jsonl", "/feeds/a4.jsonl"]) == {"a3", "a4"}
        assert registry.ids_from_origins([]) == set()

    def test_counts_span_and_outlets(self, make_store: MakeStore) -> None:
        registry = filled(make_store)
        assert registry.count() == 4 and registry.last_ingested() is not None
        assert registry.span() == (4, "2023-01-10T00:00:00+00:00", "2024-02-01T00:00:00+00:00")  # among the dated
        assert registry.outlets() == {"Reuters": 2, "The Verge": 1}  # most first; no outlet is not one

    def test_a_listing_pages_newest_first_with_the_undated_last(self, make_store: MakeStore) -> None:
        registry = filled(make_store)
        total, page = registry.listing(2)
        assert total == 4 and [r.id for r in page] == ["a2", "a1"]
        assert [r.id for r in registry.listing(10, offset=2)[1]] == ["a4", "a3"]
        assert [r.id for r in registry.listing(10, source="Reuters")[1]] == ["a1", "a3"]
        total, page = registry.listing(10, title_contains="COMMANDER")
        assert total == 1 and [r.id for r in page] == ["a1"]

    def test_re_signing_replaces_signatures_and_buckets_and_records_the_version(self, make_store: MakeStore) -> None:
        registry = filled(make_store)
        assert registry.signature_version() == 0  # a registry this version made: signed by the current MinHash
        assert registry.signed_ids() == ["a1", "a2", "a3"]  # a4 has no signature
        signature = np.full(8, 7, dtype=np.uint32)
        registry.resign({"a1": (signature, [(9, 9)])}, 5)
        reopened = make_store()
        assert reopened.signature_version() == 5
        assert np.array_equal(reopened.get(["a1"])["a1"].signature, signature)  # type: ignore[arg-type]
        assert set(reopened.lsh_candidates([(9, 9)])) == {"a1"} and reopened.lsh_candidates([(0, 11)]) == {}
        assert set(reopened.lsh_candidates([(0, 21)])) == {"a2"}  # others untouched
