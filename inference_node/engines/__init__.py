"""Built-in engines, registered like plug-ins; each imports its heavy library lazily."""

from __future__ import annotations

from collections.abc import Callable

from functions.settings import NodeSettings
from inference_node.engine import Engine, EngineFactory


def _llama_cpp(settings: NodeSettings) -> Engine:
    from inference_node.engines.llama_cpp import LlamaCppEngine  # heavy: llama-cpp-python

    return LlamaCppEngine(settings)


def _exllamav2(settings: NodeSettings) -> Engine:
    from inference_node.engines.exllamav2 import ExLlamaV2Engine  # heavy: exllamav2, CUDA

    return ExLlamaV2Engine.open(settings)


def _tensorrt_llm(settings: NodeSettings) -> Engine:
    from inference_node.engines.tensorrt_llm import TRTLLMEngine  # runs trtllm-serve

    return TRTLLMEngine.open(settings)


def register_builtins(register: Callable[[str, EngineFactory], None]) -> None:
    register("llama_cpp", _llama_cpp)
    register("exllamav2", _exllamav2)
    register("tensorrt_llm", _tensorrt_llm)


__all__ = ["register_builtins"]
