"""The engine contract: one narrow Protocol every backend implements.

An engine turns chat messages into a stream of :class:`Piece` objects. The node
server owns everything else (HTTP, queueing, metrics, OpenAI framing), so a new
backend — llama.cpp on CPU, exllamav2, TensorRT-LLM — is one small module.

Engines are registered the way a plug-in would register them: a factory under a
name, through :meth:`EngineRegistry.register`. Built-ins register themselves in
:func:`inference_node.engines.register_builtins` and import their heavy
libraries only when the factory runs, so this package imports on any machine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from functions.settings import NodeSettings


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """What an engine needs from a chat request, already validated.

    The node fills what the request leaves unset from the model's sampling defaults
    (:mod:`inference_node.sampling`); the values here are the neutral ones (no top-k,
    min-p or penalties: the distribution as the model gives it).
    """

    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    top_k: int = 0  # 0: off
    min_p: float = 0.0  # 0: off
    repeat_penalty: float = 1.0  # llama.cpp's multiplicative penalty; 1: off
    frequency_penalty: float = 0.0  # OpenAI's additive penalties, -2..2; 0: off
    presence_penalty: float = 0.0


@dataclass(frozen=True, slots=True)
class Piece:
    """A fragment of generated text. The last piece has ``finish_reason`` and usage."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@runtime_checkable
class Engine(Protocol):
    """A loaded model that generates text.

    ``generate`` yields pieces as they are produced and ends with a piece that
    carries ``finish_reason`` (``"stop"`` or ``"length"``) and the token counts.
    A prompt too long for the context raises :class:`ContextLengthExceededError`
    before the first piece.
    Closing the iterator early (client gone, request cancelled) must stop the
    generation promptly and free the engine for the next request.
    """

    model_id: str

    def generate(self, params: GenerationParams) -> AsyncIterator[Piece]: ...

    async def health(self) -> bool: ...

    async def aclose(self) -> None: ...


EngineFactory = Callable[[NodeSettings], Engine]


class UnknownEngineError(LookupError):
    """Settings name an engine nobody registered: a start-up error, not a request error."""


class EngineRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, EngineFactory] = {}

    def register(self, name: str, factory: EngineFactory) -> None:
        self._factories[name] = factory

    def names(self) -> list[str]:
        return sorted(self._factories)

    def create(self, settings: NodeSettings) -> Engine:
        try:
            factory = self._factories[settings.engine]
        except KeyError:
            raise UnknownEngineError(
                f"Unknown engine {settings.engine!r}; known: {', '.join(self.names())}"
            ) from None
        return factory(settings)
