"""Duplicate detection: exact copies by normalised-text hash, near-duplicates by MinHash (datasketch).

Wire stories are republished by many outlets with small edits (a new headline, a trimmed
last paragraph). Two articles whose word 5-shingle sets have an estimated Jaccard similarity
of at least ``NEAR_DUPLICATE_JACCARD`` belong to one story cluster. Candidates come from
LSH over the signature (32 bands of 4 rows: a pair at Jaccard 0.6 is found with
probability 0.99, at 0.3 it is rarely even compared), then the signatures are compared.

The signatures are datasketch's MinHash with fixed permutations; the hand-written one before it scored the
same on the shared corpus (docs/text-analysis.md). Signatures of two versions are not comparable: the
registry records ``MINHASH_VERSION`` and an ingest run re-signs an archive signed by another.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Mapping

import numpy as np
from datasketch import MinHash

from backend.core.text import normalize_for_hash, text_hash

NUM_PERM = 128
BANDS, ROWS = 32, 4
SHINGLE_WORDS = 5
NEAR_DUPLICATE_JACCARD = 0.6
# 1: the hand-written MinHash (blake2b shingles, splitmix64 permutations); 2: datasketch's.
MINHASH_VERSION = 2

# Signatures must stay comparable across runs: the permutations come from one fixed seed.
_SEED = 20231004
_EMPTY = np.full(NUM_PERM, np.iinfo(np.uint32).max, dtype=np.uint32)
_WORD = re.compile(r"\w+", re.UNICODE)


def exact_key(text: str) -> str:
    """Same key for texts that differ only in case and whitespace."""
    return text_hash(normalize_for_hash(text), 32)


def shingles(text: str) -> set[str]:
    """The text's word 5-grams (the whole text, for one shorter than five words), case-folded."""
    words = _WORD.findall(text.casefold())
    n = SHINGLE_WORDS if len(words) >= SHINGLE_WORDS else max(1, len(words))
    return {" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}


# datasketch 2's 32-bit affine permutations of SHA-1 hashes; a datasketch of another scheme is another version.
_SCHEME = "affine32"


@functools.cache
def _permutations() -> np.ndarray:
    """Made once per process (on first use, not at import): drawing them is most of a short text's time."""
    permutations: np.ndarray = MinHash(num_perm=NUM_PERM, seed=_SEED, scheme=_SCHEME).permutations
    return permutations


def minhash(text: str) -> np.ndarray:
    grams = [g.encode() for g in shingles(text) if g]
    if not grams:
        return _EMPTY.copy()  # no words: no one's duplicate
    signature = MinHash(num_perm=NUM_PERM, seed=_SEED, permutations=_permutations(), scheme=_SCHEME)
    signature.update_batch(grams)
    values: np.ndarray = signature.hashvalues.astype(np.uint32)  # below 2**32 by construction
    return values


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b))


def lsh_bands(signature: np.ndarray) -> list[tuple[int, int]]:
    out = []
    for band in range(BANDS):
        digest = hashlib.blake2b(signature[band * ROWS : (band + 1) * ROWS].tobytes(), digest_size=8).digest()
        out.append((band, int.from_bytes(digest, "little", signed=True)))
    return out


class StoryClusterer:
    """Assigns each article the cluster of its most similar earlier article, or a cluster of its own.

    ``lookup`` finds stored candidates by LSH bucket; articles of the current run that are
    not stored yet are held here until ``flush``.
    """

    def __init__(
        self,
        lookup: Callable[[list[tuple[int, int]]], Mapping[str, np.ndarray]],
        cluster_of: Callable[[list[str]], Mapping[str, str]],
    ) -> None:
        self._lookup = lookup
        self._cluster_of = cluster_of
        self._pending_sigs: dict[str, np.ndarray] = {}
        self._pending_clusters: dict[str, str] = {}
        self._pending_buckets: dict[tuple[int, int], list[str]] = {}

    def assign(self, article_id: str, signature: np.ndarray) -> tuple[str, list[tuple[int, int]]]:
        bands = lsh_bands(signature)
        candidates = dict(self._lookup(bands))
        for key in bands:
            for other in self._pending_buckets.get(key, []):
                candidates[other] = self._pending_sigs[other]
        candidates.pop(article_id, None)
        best_id, best = None, NEAR_DUPLICATE_JACCARD
        for other, sig in candidates.items():
            score = jaccard(signature, sig)
            if score >= best:
                best_id, best = other, score
        if best_id is None:
            cluster = article_id
        elif best_id in self._pending_clusters:
            cluster = self._pending_clusters[best_id]
        else:
            cluster = self._cluster_of([best_id]).get(best_id, best_id)
        self._pending_sigs[article_id] = signature
        self._pending_clusters[article_id] = cluster
        for key in bands:
            self._pending_buckets.setdefault(key, []).append(article_id)
        return cluster, bands

    def flush(self) -> None:
        """Forget pending articles once they are stored and ``lookup`` can find them."""
        self._pending_sigs.clear()
        self._pending_clusters.clear()
        self._pending_buckets.clear()
