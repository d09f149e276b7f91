"""Engines are plug-ins: registered by name, created from settings, heavy imports kept lazy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from functions.settings import NodeSettings
from inference_node.engine import Engine, EngineRegistry, UnknownEngineError
from inference_node.engines import register_builtins
from tests.inference_node.test_server_inprocess import EchoEngine


def registry_with_builtins() -> EngineRegistry:
    registry = EngineRegistry()
    register_builtins(registry.register)
    return registry


def test_builtins_register_llama_cpp() -> None:
    assert "llama_cpp" in registry_with_builtins().names()


def test_an_unknown_engine_names_the_known_ones() -> None:
    registry = registry_with_builtins()
    registry.register("echo", lambda settings: EchoEngine())
    with pytest.raises(UnknownEngineError) as caught:
        registry.create(NodeSettings(engine="vllm-nope"))
    message = str(caught.value)
    assert "vllm-nope" in message
    assert "llama_cpp" in message and "echo" in message


def test_a_plugin_engine_is_created_from_settings() -> None:
    registry = registry_with_builtins()
    seen: list[NodeSettings] = []

    def factory(settings: NodeSettings) -> Engine:
        seen.append(settings)
        return EchoEngine()

    registry.register("echo", factory)
    settings = NodeSettings(engine="echo", threads=2)
    engine = registry.create(settings)
    assert isinstance(engine, EchoEngine)
    assert isinstance(engine, Engine)
    assert seen == [settings]
    assert registry.names() == ["echo", "exllamav2", "llama_cpp", "tensorrt_llm"]


def test_the_engine_protocol_check_is_not_vacuous() -> None:
    class NoClose:
        model_id = "x"

        def generate(self, params: object) -> object:
            return iter(())

        async def health(self) -> bool:
            return True

    assert not isinstance(NoClose(), Engine)
    assert not isinstance(object(), Engine)


def test_registries_do_not_share_state() -> None:
    one = EngineRegistry()
    one.register("echo", lambda settings: EchoEngine())
    assert EngineRegistry().names() == []


def test_the_node_imports_neither_llama_cpp_nor_litellm() -> None:
    code = (
        "import sys, inference_node.engine, inference_node.engines, inference_node.server\n"
        "heavy = sorted({'llama_cpp', 'litellm'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
