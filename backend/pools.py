"""The worker threads one ``Services`` holds, made by ``build_services`` and shut down by ``Services.close``.

Threads start at the first task, so a pool nothing uses (the model's, where no model is configured)
costs nothing. Owned in one place so that a server stopping, or a test done with its services, leaves
no ``byline-*`` thread behind.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pools:
    lexical: ThreadPoolExecutor  # BM25 while the question embeds (the news retriever's first stage)
    llm: ThreadPoolExecutor  # answers by the language model, waited for until the question's deadline
    condense: ThreadPoolExecutor  # follow-ups made standalone by the language model

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
