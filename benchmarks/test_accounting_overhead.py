"""The added per-request cost of authentication + rate limiting + audit, per limit backend.

A gateway in front of the fake upstream (a test double that answers at once)
serves two kinds of caller: the bootstrap key (compared in memory, no limits)
and a stored key with rpm/tpm/daily limits (looked up by HMAC, admitted against
key and tenant buckets, settled after the answer). Every request is audited in
both. The stored key's extra latency over the bootstrap key's is what
authentication against the store plus rate limiting cost; audit cost is in both
(its record() call is measured on its own in test_audit.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from benchmarks.conftest import Stack, chat_body, ms_stats, report
from tests.conftest import API_KEY, create_key, gateway_env, start
from tests.functions.ratelimit.conftest import redis_url as redis_url

ROUTE = "/v1/chat/completions"
_baseline: dict[str, float] = {}


@pytest.fixture(params=["memory", "file", "redis"])
def limited_gateway(
    request: pytest.FixtureRequest, stack: Stack, tmp_path: Path, log_dir: Path
) -> Iterator[tuple[str, str, str]]:
    backend: str = request.param
    limits: dict[str, Any] = {"backend": backend}
    if backend == "redis":
        limits["redis_url"] = request.getfixturevalue("redis_url")
    key = create_key(
        tmp_path, "bench", "--rpm", "1000000", "--tpm", "1000000000", "--daily-tokens", "1000000000"
    )
    deployments = [
        {
            "name": "fake",
            "model": "fake",
            "api_base": f"{stack.fake().url}/v1",
            "upstream_model": "fake-model",
        }
    ]
    env = gateway_env(
        deployments,
        ENCLAVE_DATA_DIR=str(tmp_path),
        ENCLAVE_GATEWAY_RATE_LIMIT=json.dumps(limits),
        ENCLAVE_CACHE_BACKEND="off",  # repeated questions: measure the model path, not hits
    )
    gateway = start("gateway", env, log_dir)
    yield backend, gateway.url, key
    gateway.stop()


@pytest.mark.parametrize("caller", ["bootstrap-unlimited", "stored-key-limited"])
def test_auth_limits_audit_overhead(
    benchmark: Any, limited_gateway: tuple[str, str, str], caller: str
) -> None:
    backend, url, stored = limited_gateway
    key = API_KEY if caller.startswith("bootstrap") else stored
    content = orjson.dumps(chat_body("fake"))
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    with httpx.Client(timeout=30) as client:

        def call() -> None:
            response = client.post(url + ROUTE, content=content, headers=headers)
            assert response.status_code == 200, response.text

        benchmark.pedantic(call, rounds=300, iterations=1, warmup_rounds=30)
    p50, mean = ms_stats(benchmark)
    figures: dict[str, float | str] = {"backend": backend, "p50_ms": p50, "mean_ms": mean}
    if caller.startswith("bootstrap"):
        _baseline[backend] = p50
    elif backend in _baseline:
        figures["limits_over_bootstrap_p50_ms"] = p50 - _baseline[backend]
    report(benchmark, f"auth+limits+audit {backend} {caller}", **figures)
