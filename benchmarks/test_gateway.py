"""What the gateway adds to one request: latency and time to first token.

Each figure is taken straight to an upstream and through the gateway to the same
upstream; the difference is the gateway's. The fake upstream (a test double that
answers instantly) isolates the gateway's own cost from the model's noise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from benchmarks.conftest import (
    Stack,
    Target,
    chat_body,
    cpu_seconds,
    ms_stats,
    report,
    target,
)

ROUTE = "/v1/chat/completions"
_medians: dict[str, float] = {}


def poster(client: httpx.Client, t: Target, body: dict[str, Any]) -> Callable[[], None]:
    content = orjson.dumps(body)
    headers = {**t.headers, "content-type": "application/json"}

    def call() -> None:
        response = client.post(t.url + ROUTE, content=content, headers=headers)
        assert response.status_code == 200, response.text

    return call


@pytest.mark.parametrize(
    "name", ["node-direct", "node-via-gateway", "fake-direct", "fake-via-gateway"]
)
def test_latency_max_tokens_1(benchmark: Any, stack: Stack, name: str) -> None:
    t = target(stack, name)
    rounds, warmup = (40, 5) if name.startswith("node") else (400, 40)
    with httpx.Client(timeout=120) as client:
        call = poster(client, t, chat_body(t.model))
        cpu = cpu_seconds(t.pid)
        benchmark.pedantic(call, rounds=rounds, iterations=1, warmup_rounds=warmup)
        cpu_ms = (cpu_seconds(t.pid) - cpu) * 1000 / (rounds + warmup)
    p50, mean = ms_stats(benchmark)
    _medians[name] = p50
    figures: dict[str, float] = {"p50_ms": p50, "mean_ms": mean, "server_cpu_ms_per_req": cpu_ms}
    direct = _medians.get(name.replace("via-gateway", "direct"))
    if "gateway" in name and direct is not None:
        figures["gateway_overhead_p50_ms"] = p50 - direct
    report(benchmark, f"latency {name}", **figures)


def test_latency_gateway_health(benchmark: Any, stack: Stack) -> None:
    """The floor of the gateway's HTTP stack (uvicorn/h11, edge middleware, access log)."""
    gateway = stack.gateway()
    with httpx.Client(timeout=10) as client:

        def call() -> None:
            assert client.get(gateway.url + "/health").status_code == 200

        benchmark.pedantic(call, rounds=400, iterations=1, warmup_rounds=40)
    p50, mean = ms_stats(benchmark)
    report(benchmark, "latency gateway GET /health", p50_ms=p50, mean_ms=mean)


def _first_content(lines: Iterator[str]) -> bool:
    for line in lines:
        if not line.startswith("data:") or line.endswith("[DONE]"):
            continue
        choices = orjson.loads(line[5:]).get("choices") or []
        if choices and (choices[0].get("delta") or {}).get("content"):
            return True
    return False


@pytest.mark.parametrize(
    "name", ["node-direct", "node-via-gateway", "fake-direct", "fake-via-gateway"]
)
def test_time_to_first_token(benchmark: Any, stack: Stack, name: str) -> None:
    """Timed: request sent until the first SSE chunk with content; the rest is drained untimed."""
    t = target(stack, name)
    rounds, warmup = (20, 3) if name.startswith("node") else (200, 20)
    content = orjson.dumps(chat_body(t.model, max_tokens=16, stream=True))
    headers = {**t.headers, "content-type": "application/json"}
    open_streams: list[tuple[httpx.Response, Iterator[str]]] = []

    def drain() -> None:
        while open_streams:
            response, lines = open_streams.pop()
            for _ in lines:
                pass
            response.close()

    with httpx.Client(timeout=120) as client:

        def first_token() -> None:
            request = client.build_request("POST", t.url + ROUTE, content=content, headers=headers)
            response = client.send(request, stream=True)
            lines = response.iter_lines()
            open_streams.append((response, lines))
            assert response.status_code == 200 and _first_content(lines)

        benchmark.pedantic(first_token, setup=drain, rounds=rounds, warmup_rounds=warmup)
        drain()
    p50, mean = ms_stats(benchmark)
    _medians["ttft-" + name] = p50
    figures = {"ttft_p50_ms": p50, "ttft_mean_ms": mean}
    direct = _medians.get("ttft-" + name.replace("via-gateway", "direct"))
    if "gateway" in name and direct is not None:
        figures["gateway_added_p50_ms"] = p50 - direct
    report(benchmark, f"TTFT {name}", **figures)
