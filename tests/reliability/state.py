"""``python -m tests.reliability.state DATA_DIR``: what an archive holds, as JSON, read in a fresh process."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any


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

    settings = Settings(data_dir=data_dir)
    checks = integrity(data_dir)  # before Chroma opens (and perhaps repairs) anything
    client = chromadb.PersistentClient(
        path=str(settings.chroma_dir), settings=ChromaClientSettings(anonymized_telemetry=False)
    )
    collection = client.get_collection(settings.chroma.collection)
    got = collection.get(include=["metadatas", "documents"])
    chunks = {
        i: [str(m["article_id"]), int(m["position"]), str(m.get("cluster_id", "")), str(d)]  # type: ignore[arg-type]
        for i, m, d in zip(got["ids"], got["metadatas"] or [], got["documents"] or [], strict=True)
    }
    # The vectors are usable, not only counted: each chunk's own embedding finds its text first.
    misses = 0
    stored = collection.get(include=["embeddings", "documents"])
    for start in range(0, len(stored["ids"]), 500):
        vectors = stored["embeddings"][start : start + 500]  # type: ignore[index]
        found = collection.query(query_embeddings=vectors, n_results=1, include=["documents"])
        for own, first in zip(stored["documents"][start : start + 500], found["documents"] or [], strict=True):  # type: ignore[index]
            misses += not first or first[0] != own
    with sqlite3.connect(f"file:{settings.lexical_db}?mode=ro", uri=True) as db:
        lexical = sorted(r[0] for r in db.execute("SELECT chunk_id FROM docs"))
    with sqlite3.connect(f"file:{settings.articles_db}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT id, content_hash, cluster_id, chunks FROM articles").fetchall()
        copies = dict(db.execute("SELECT copy_id, article_id FROM copies").fetchall())
    return {
        "chunks": chunks,
        "lexical": lexical,
        "articles": {r[0]: [r[1], r[2], int(r[3])] for r in rows},
        "copies": copies,
        "integrity": checks,
        "self_misses": misses,
    }


if __name__ == "__main__":
    json.dump(read_state(Path(sys.argv[1])), sys.stdout)
