"""The response cache: what a hit costs, and what the cache adds to a miss.

Each figure goes through a real gateway process (authentication, filtering,
routing, the rate limit, the cache) in front of the fake upstream (a test double
that answers at once), so the model's time does not hide the gateway's:

- ``hit``: the same deterministic question again and again: answered from the
  cache, guarded and restored for the caller, never reaching the upstream;
- ``miss``: a new question every time, through a gateway with the cache on (the
  lookup, the guard/restore split, the entry written) and through one with the
  cache off (``ENCLAVE_CACHE_BACKEND=off``); the difference is the cache's cost.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from benchmarks.conftest import (
    AUTH,
    FAKE_MODEL,
    Server,
    Stack,
    deployment,
    gateway_env,
    report,
    start,
)
from tests.conftest import log_dir as log_dir

ROUTE = "/v1/chat/completions"
ROUNDS, WARMUP = 600, 60


@pytest.fixture(scope="module")
def gateways(stack: Stack, log_dir: Any) -> Iterator[dict[str, Server]]:
    fake = stack.fake()
    deployments = [deployment("fake", fake, model=FAKE_MODEL, upstream_model="fake-model")]
    on = start("gateway", gateway_env(deployments), log_dir)
    off = start("gateway", gateway_env(deployments, ENCLAVE_CACHE_BACKEND="off"), log_dir)
    yield {"on": on, "off": off}
    on.stop()
    off.stop()


def _body(text: str) -> bytes:
    content = f"My phone is 13812345678; {text}"  # a value to mask and restore each time
    messages = [{"role": "user", "content": content}]
    return orjson.dumps({"model": FAKE_MODEL, "messages": messages, "temperature": 0})


def _poster(
    client: httpx.Client, url: str, bodies: Iterator[bytes], expect: str
) -> Callable[[], None]:
    headers = {**AUTH, "content-type": "application/json"}

    def call() -> None:
        answer = client.post(url + ROUTE, content=next(bodies), headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-enclave-cache"] == expect

    return call


def _figures(benchmark: Any) -> tuple[float, float]:
    data = np.array(benchmark.stats.stats.data) * 1000
    return float(np.percentile(data, 50)), float(np.percentile(data, 99))


_medians: dict[str, float] = {}


def test_hit_latency(benchmark: Any, gateways: dict[str, Server]) -> None:
    with httpx.Client(timeout=30) as client:
        same = itertools.repeat(_body("what are the opening hours?"))
        _poster(client, gateways["on"].url, iter([next(same)]), "miss")()
        benchmark.pedantic(
            _poster(client, gateways["on"].url, same, "hit"),
            rounds=ROUNDS,
            iterations=1,
            warmup_rounds=WARMUP,
        )
    p50, p99 = _figures(benchmark)
    report(benchmark, "cache hit through the gateway", p50_ms=p50, p99_ms=p99)


@pytest.mark.parametrize("cache", ["off", "on"])
def test_miss_latency(benchmark: Any, gateways: dict[str, Server], cache: str) -> None:
    fresh = (_body(f"question {cache} {n}") for n in itertools.count())
    expect = "miss" if cache == "on" else "bypass"
    with httpx.Client(timeout=30) as client:
        benchmark.pedantic(
            _poster(client, gateways[cache].url, fresh, expect),
            rounds=ROUNDS,
            iterations=1,
            warmup_rounds=WARMUP,
        )
    p50, p99 = _figures(benchmark)
    _medians[cache] = p50
    figures = {"p50_ms": p50, "p99_ms": p99}
    if "off" in _medians and cache == "on":
        figures["cache_cost_p50_ms"] = p50 - _medians["off"]
    report(benchmark, f"miss through the gateway, cache {cache}", **figures)
