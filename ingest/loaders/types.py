from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Loaded:
    """One record (a dict) or one problem (a message), where it was, and the file's bytes done."""

    value: dict[str, Any] | str
    line: int | None = None
    offset: int = 0
