"""The worker threads one ``Services`` holds, made by ``build_services`` and shut down by ``Services.close``.

Threads start at the first task, so a pool nothing uses (the model's, where no model is configured)
costs nothing. Owned in one place so that a server stopping, or a test done with its services, leaves
no ``byline-*`` thread behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field


class InFlight:
    """The questions being answered now. Background work (the saved questions' checker) waits for a moment
    with none before each step, so that on a small machine it never competes with a question for the cores.

    A step already under way is not interrupted: a question that arrives then shares the cores for the rest
    of it (one reading, a few hundred milliseconds). Under questions without end, the work goes on anyway
    after ``max_wait_s``, so it is late but never starved."""

    def __init__(self, settle_s: float = 0.5) -> None:
        """``settle_s``: how long after the last question background work waits, so that it does not start
        a step in the gap between one question and the next of a client asking several."""
        self._count = 0
        self._settle_s = settle_s
        self._last_end = 0.0
        self._idle = threading.Condition()

    @contextmanager
    def question(self) -> Iterator[None]:
        with self._idle:
            self._count += 1
        try:
            yield
        finally:
            with self._idle:
                self._count -= 1
                self._last_end = time.monotonic()
                if not self._count:
                    self._idle.notify_all()

    @property
    def count(self) -> int:
        return self._count

    def wait_quiet(self, max_wait_s: float = 30.0) -> bool:
        """Return once no question has been under way for ``settle_s`` (True), or after ``max_wait_s``
        regardless (False)."""
        deadline = time.monotonic() + max_wait_s
        with self._idle:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return False
                if not self._count:
                    quiet_for = now - self._last_end
                    if quiet_for >= self._settle_s:
                        return True
                    self._idle.wait(min(self._settle_s - quiet_for, deadline - now))
                else:
                    self._idle.wait(deadline - now)


@dataclass(frozen=True, slots=True)
class Pools:
    lexical: ThreadPoolExecutor  # BM25 while the question embeds (the news retriever's first stage)
    llm: ThreadPoolExecutor  # answers by the language model, waited for until the question's deadline
    condense: ThreadPoolExecutor  # follow-ups made standalone by the language model
    in_flight: InFlight = field(default_factory=InFlight)  # questions under way, which background work gives way to

    @classmethod
    def start(cls) -> Pools:
        return cls(
            lexical=ThreadPoolExecutor(max_workers=4, thread_name_prefix="byline-bm25"),
            llm=ThreadPoolExecutor(max_workers=4, thread_name_prefix="byline-llm"),
            condense=ThreadPoolExecutor(max_workers=2, thread_name_prefix="byline-condense"),
        )

    def shutdown(self) -> None:
        """Idle threads end now and queued tasks are dropped. A model call under way is not waited for: it
        ends by its own timeout, and its thread with it; a task submitted afterwards raises RuntimeError."""
        for pool in (self.lexical, self.llm, self.condense):
            pool.shutdown(wait=False, cancel_futures=True)
