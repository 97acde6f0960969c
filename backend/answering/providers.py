"""The LLM providers, one registry entry each: how to build its chat model and how to tell it is ready.

Adding a provider is one ``register(Provider(...))``: settings accept its name, ``build_services``
builds its chat model and ``/ready`` probes it, all by looking the name up here. Nothing else
chooses by provider name. The client libraries are imported inside the factories, so reading this
registry (settings validation does) costs no model or HTTP library import.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from backend.settings import LLMSettings

log = logging.getLogger("byline.llm")


@dataclass(frozen=True, slots=True)
class Provider:
    name: str  # the value of BYLINE_LLM__PROVIDER
    # The chat model for these settings; None for a provider that answers without one (extractive).
    factory: Callable[[LLMSettings], BaseChatModel] | None
    # Why the provider cannot answer now (for ``/ready``), or None; the float is the probe's timeout in seconds.
    probe: Callable[[LLMSettings, float], str | None]


PROVIDERS: dict[str, Provider] = {}


def register(provider: Provider) -> Provider:
    if provider.name in PROVIDERS:
        raise ValueError(f"provider {provider.name!r} is already registered")
    PROVIDERS[provider.name] = provider
    return provider


def provider_for(settings: LLMSettings) -> Provider:
    try:
        return PROVIDERS[settings.provider]
    except KeyError:  # settings check the name; a model built without validation may still carry any
        raise ValueError(f"unknown provider {settings.provider!r}") from None


def build_chat_model(settings: LLMSettings) -> BaseChatModel | None:
    """The chat model of the configured provider, or None for one that needs none (``extractive``)."""
    factory = provider_for(settings).factory
    return None if factory is None else factory(settings)


def llm_problem(settings: LLMSettings, timeout_s: float = 2.0) -> str | None:
    """Why the configured provider cannot answer now, or None when it can (for ``/ready``)."""
    return provider_for(settings).probe(settings, timeout_s)


# -- the providers that ship -------------------------------------------------------------------

_OLLAMA_URL = "http://127.0.0.1:11434"


def _always_ready(settings: LLMSettings, timeout_s: float) -> str | None:
    return None


def _openai(settings: LLMSettings) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=settings.model or "default",
        base_url=settings.base_url,
        api_key=settings.api_key,
        timeout=settings.timeout_s,
        max_retries=settings.max_retries,
        temperature=settings.temperature,
        max_completion_tokens=settings.max_tokens,
    )


def _ollama(settings: LLMSettings) -> BaseChatModel:
    from langchain_ollama import ChatOllama

    return ChatOllama(
        model=settings.model or "llama3.2",
        base_url=settings.base_url or _OLLAMA_URL,
        temperature=settings.temperature,
        num_predict=settings.max_tokens,
        client_kwargs={"timeout": settings.timeout_s},
    )


def _llamacpp(settings: LLMSettings) -> BaseChatModel:
    from backend.answering.llm import LlamaCppChat, default_gguf

    return LlamaCppChat(
        model_path=settings.model or default_gguf(),
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        context_tokens=settings.context_tokens,
    )


def _server_answers(settings: LLMSettings, url: str, base: str, timeout_s: float) -> str | None:
    import httpx

    headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"}
    try:
        status = httpx.get(url, headers=headers, timeout=timeout_s).status_code
    except httpx.HTTPError as exc:
        return f"{settings.provider} server at {base} unreachable: {type(exc).__name__}"
    return None if status < 400 else f"{settings.provider} server at {base} answered {status}"


def _openai_ready(settings: LLMSettings, timeout_s: float) -> str | None:
    if not settings.base_url:
        return None  # the hosted default: not probed from here
    base = settings.base_url.rstrip("/")
    return _server_answers(settings, f"{base}/models", base, timeout_s)


def _ollama_ready(settings: LLMSettings, timeout_s: float) -> str | None:
    base = (settings.base_url or _OLLAMA_URL).rstrip("/")
    return _server_answers(settings, f"{base}/api/tags", base, timeout_s)


def _llamacpp_ready(settings: LLMSettings, timeout_s: float) -> str | None:
    from backend.answering.llm import ProviderUnavailable, default_gguf

    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed"
    try:
        path = settings.model or default_gguf()
    except ProviderUnavailable as exc:
        return str(exc)
    if Path(path).is_file():
        return None
    log.warning("no GGUF file at %s", path)  # the path is for the operator's log, not for clients
    return "the configured GGUF file does not exist (the server log names the path)"


# extractive: no language model (quotes the best-supported sentences); llamacpp: a GGUF model in process
# (pip install .[local]); ollama and openai: a server, any OpenAI-compatible one for openai.
register(Provider("extractive", None, _always_ready))
register(Provider("llamacpp", _llamacpp, _llamacpp_ready))
register(Provider("ollama", _ollama, _ollama_ready))
register(Provider("openai", _openai, _openai_ready))
