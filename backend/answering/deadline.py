"""One time budget per question for every language-model call made while answering it.

A follow-up can ask the model twice (to rewrite the question, then to answer it); each call waiting the
full timeout would let a slow model hold a question for twice as long as configured. The chain starts a
clock when a question arrives; each model call waits only for what is left of the timeout since then (the
rewrite for half of it at most, leaving time for retrieval and the extractive fallback).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_started: ContextVar[float | None] = ContextVar("byline_question_started", default=None)


@contextmanager
def question_clock(started: float | None = None) -> Iterator[float]:
    """Run the body as part of one question, begun at ``started`` (a ``time.monotonic()``; now by default)."""
    began = time.monotonic() if started is None else started
    token = _started.set(began)
    try:
        yield began
    finally:
        _started.reset(token)


def time_left(timeout_s: float) -> float:
    """Seconds a model call may still take: the timeout less the time this question has run already
    (the whole timeout outside a question, e.g. a direct call in a test)."""
    started = _started.get()
    if started is None:
        return timeout_s
    return max(0.0, timeout_s - (time.monotonic() - started))
