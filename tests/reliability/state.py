"""``python -m tests.reliability.state DATA_DIR``: what an archive holds, as JSON, read in a fresh process."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import numpy as np


def integrity(data_dir: Path) -> dict[str, str]:
    """``PRAGMA integrity_check`` of every SQLite file under the data directory (Chroma's included)."""
    found: dict[str, str] = {}
    for path in sorted(data_dir.rglob("*.sqlite3")):
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            found[str(path.relative_to(data_dir))] = str(db.execute("PRAGMA integrity_check").fetchone()[0])
        finally:
            db.close()
    return found


def read_state(data_dir: Path) -> dict[str, Any]:
    import chromadb
    from chromadb.config import Settings as ChromaClientSettings

    from backend.settings import Settings
    from backend.store.chroma import live_collection

    settings = Settings(data_dir=data_dir)
    checks = integrity(data_dir)  # before Chroma opens (and perhaps repairs) anything
    client = chromadb.PersistentClient(
        path=str(settings.chroma_dir), settings=ChromaClientSettings(anonymized_telemetry=False)
    )
    collection = client.get_collection(live_collection(client, settings.chroma.collection))  # after a reindex too
    got = collection.get(include=["metadatas", "documents"])
    chunks = {
        i: [str(m["article_id"]), int(m["position"]), str(m.get("cluster_id", "")), str(d)]  # type: ignore[arg-type]
        for i, m, d in zip(got["ids"], got["metadatas"] or [], got["documents"] or [], strict=True)
    }
    # The vectors are the right ones, not only counted: each chunk's stored vector, projected on a few fixed
    # random directions (a fingerprint; a different text gives a different one), to compare with a clean
    # run's. Searching each chunk by its own vector would test Chroma's approximate index instead: after a
    # run that replaced vectors, its graph can miss one chunk of hundreds while every vector is right.
    stored = collection.get(include=["embeddings"])
    vectors = np.asarray(stored["embeddings"], dtype=np.float64).reshape(len(stored["ids"]), -1)
    directions = np.random.default_rng(0).normal(size=(vectors.shape[1] or 1, 8)) if len(vectors) else None
    prints = (vectors @ directions).round(5).tolist() if directions is not None else []
    fingerprints = dict(zip(stored["ids"], prints, strict=True))
    with sqlite3.connect(f"file:{settings.lexical_db}?mode=ro", uri=True) as db:
        lexical = sorted(r[0] for r in db.execute("SELECT chunk_id FROM lexical_docs"))
    with sqlite3.connect(f"file:{settings.articles_db}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT id, content_hash, cluster_id, chunks FROM articles").fetchall()
        copies = dict(db.execute("SELECT copy_id, article_id FROM article_copies").fetchall())
    return {
        "chunks": chunks,
        "lexical": lexical,
        "articles": {r[0]: [r[1], r[2], int(r[3])] for r in rows},
        "copies": copies,
        "integrity": checks,
        "fingerprints": fingerprints,
    }


if __name__ == "__main__":
    json.dump(read_state(Path(sys.argv[1])), sys.stdout)
