"""Node tokens/s against raw llama-cpp-python: same GGUF, same thread count (1), same prompt.

The node runs first; the raw benchmark then stops every server so that nothing
else is on the cores while llama.cpp runs in this process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from benchmarks.conftest import NODE_MODEL, Stack, report

MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
MAX_TOKENS = 128
_rates: dict[str, float] = {}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def test_node_tokens_per_second(benchmark: Any, stack: Stack) -> None:
    node = stack.node()
    body = {"model": NODE_MODEL, "messages": MESSAGES, "max_tokens": MAX_TOKENS, "temperature": 0}
    rates: list[float] = []
    tokens: list[int] = []
    with httpx.Client(timeout=300) as client:

        def generate() -> None:
            started = time.perf_counter()
            response = client.post(f"{node.url}/v1/chat/completions", json=body)
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, response.text
            tokens.append(response.json()["usage"]["completion_tokens"])
            rates.append(tokens[-1] / elapsed)

        benchmark.pedantic(generate, rounds=3, iterations=1, warmup_rounds=1)
    _rates["node"] = _median(rates[1:])
    report(benchmark, "node HTTP", tok_per_s=_rates["node"], completion_tokens=tokens[-1])


@pytest.fixture
def raw_llama(stack: Stack) -> Iterator[Any]:
    from llama_cpp import Llama

    from functions.settings import NodeSettings
    from inference_node.engines.llama_cpp import bundled_smollm2, model_params

    stack.stop_all()  # nothing else competes for the cores
    with model_params(use_extra_bufts=NodeSettings().llama_extra_buffers):  # as the node
        llm = Llama(
            model_path=str(bundled_smollm2()),
            n_ctx=2048,
            n_threads=1,
            n_threads_batch=1,
            verbose=False,
        )
    yield llm
    llm.close()


def test_raw_llama_cpp_tokens_per_second(benchmark: Any, raw_llama: Any) -> None:
    rates: list[float] = []
    tokens: list[int] = []

    def generate() -> None:
        started = time.perf_counter()
        answer = raw_llama.create_chat_completion(
            messages=MESSAGES, max_tokens=MAX_TOKENS, temperature=0
        )
        elapsed = time.perf_counter() - started
        tokens.append(answer["usage"]["completion_tokens"])
        rates.append(tokens[-1] / elapsed)

    benchmark.pedantic(generate, rounds=3, iterations=1, warmup_rounds=1)
    raw = _median(rates[1:])
    figures: dict[str, float | int] = {"tok_per_s": raw, "completion_tokens": tokens[-1]}
    if "node" in _rates:
        figures["node_vs_raw"] = _rates["node"] / raw
    report(benchmark, "raw llama-cpp-python", **figures)
