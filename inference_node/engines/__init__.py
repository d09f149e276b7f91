"""Built-in engines, registered like plug-ins; each imports its heavy library lazily."""

from __future__ import annotations

from collections.abc import Callable

from functions.settings import NodeSettings
from inference_node.engine import Engine, EngineFactory


def _llama_cpp(settings: NodeSettings) -> Engine:
    from inference_node.engines.llama_cpp import LlamaCppEngine  # heavy: llama-cpp-python

    return LlamaCppEngine(settings)


def register_builtins(register: Callable[[str, EngineFactory], None]) -> None:
    register("llama_cpp", _llama_cpp)


__all__ = ["register_builtins"]
