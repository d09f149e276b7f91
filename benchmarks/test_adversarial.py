"""Adversarial bodies: how long each takes to scan, and whether anyone else waits for it.

The bodies of issue 9: 100,000 newlines (quadratic in the old injection rule), 30,000
IP addresses and 30,000 e-mail addresses (30,000 overlapping hits to resolve), and
1,000,000 characters of mixed zh/en personal data. ``scan`` is the chat path's
filter on its own (:meth:`ContentFilter.mask_conversation`, one user message).
``gateway`` posts each body as a chat message to a real gateway process in front of
the fake upstream (a test double that answers at once), while a tiny chat request
is sent over and over on another connection: the report gives each body's response
time and the worst latency of a tiny request while the bodies were in flight.
Targets (I4): every body handled in under 1 s, no tiny request waiting more than 100 ms.
Run: ``pytest benchmarks/test_adversarial.py --benchmark-only -s``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from benchmarks.conftest import AUTH, FAKE_MODEL, chat_body, ms_stats, report, start_fake
from functions.filtering import ContentFilter
from functions.wire import ChatMessage
from tests.conftest import Server, deployment, gateway_env, start

ROUTE = "/v1/chat/completions"
MIXED_PII = (
    "联系人李雷，手机13812345678，邮箱li.lei@example.com，身份证11010519491231002X，"
    "IP 192.168.10.24, card 4111 1111 1111 1111, SSN 123-45-6789, "
    "座机010-62345678, passport E12345678 护照. "
)
BODIES = {
    "newlines-100k": "\n" * 100_000,
    "ips-30k": "1.1.1.1 " * 30_000,
    "emails-30k": "".join(f"user{i}@example.com " for i in range(30_000)),
    "mixed-pii-1m": (MIXED_PII * (1_000_000 // len(MIXED_PII) + 1))[:1_000_000],
}
MAX_BODY = 8 * 1024 * 1024  # the 1 MB body is about 1.6 MB of UTF-8 JSON


@pytest.mark.parametrize("name", list(BODIES))
def test_scan_time(benchmark: Any, name: str) -> None:
    cf = ContentFilter()
    messages = [ChatMessage(role="user", content=BODIES[name])]
    result = benchmark.pedantic(cf.mask_conversation, (messages,), rounds=3, iterations=1)
    assert result.messages[0].text()  # scanned and masked, not refused
    median, mean = ms_stats(benchmark)
    found = len(result.result.detections)
    report(benchmark, f"adversarial scan {name}", median_ms=median, mean_ms=mean, detections=found)


@pytest.fixture(scope="module")
def adversarial_gateway(log_dir: Path) -> Iterator[Server]:
    fake = start_fake(log_dir)
    env = gateway_env(
        [deployment("fake-upstream", fake, model=FAKE_MODEL, upstream_model="fake-model")],
        ENCLAVE_GATEWAY_MAX_BODY_BYTES=str(MAX_BODY),
    )
    gateway = start("gateway", env, log_dir)
    started = time.perf_counter()
    while not _scanner_ready(gateway.url):  # the worker process starts after the gateway
        time.sleep(0.1)
    ready_s = time.perf_counter() - started
    print(f"\n[bench] adversarial gateway: scan_worker_ready_s={ready_s:.2f}")
    yield gateway
    gateway.stop()
    fake.stop()


def _scanner_ready(url: str) -> bool:
    details = httpx.get(f"{url}/health", headers=AUTH, timeout=10).json()
    return bool(details["scanner"]["ready"])


def _adversarial_body(text: str) -> bytes:
    body = chat_body(FAKE_MODEL)
    body["messages"] = [{"role": "user", "content": text}]
    return orjson.dumps(body)


async def _post(client: httpx.AsyncClient, url: str, content: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    response = await client.post(url + ROUTE, content=content, headers=AUTH)
    return response.status_code, time.perf_counter() - started


async def _scenario(url: str) -> tuple[list[float], list[float], dict[str, tuple[int, float]]]:
    """Baseline tiny latencies, tiny latencies under load, and each body's (status, seconds)."""
    tiny = orjson.dumps(chat_body(FAKE_MODEL))
    limits = httpx.Limits(max_connections=1)
    async with (
        httpx.AsyncClient(timeout=60, limits=limits) as small,
        httpx.AsyncClient(timeout=60, limits=limits) as large,
    ):
        baseline = []
        for _ in range(40):
            status, seconds = await _post(small, url, tiny)
            assert status == 200
            baseline.append(seconds)
        done = asyncio.Event()
        under_load: list[float] = []

        async def ticker() -> None:
            while not done.is_set():
                status, seconds = await _post(small, url, tiny)
                assert status == 200
                under_load.append(seconds)
                await asyncio.sleep(0.002)

        async def attacker() -> dict[str, tuple[int, float]]:
            handled = {}
            await asyncio.sleep(0.05)
            for name, text in BODIES.items():
                handled[name] = await _post(large, url, _adversarial_body(text))
            await asyncio.sleep(0.05)
            done.set()
            return handled

        _, handled = await asyncio.gather(ticker(), attacker())
    return baseline, under_load, handled


def test_tiny_request_latency_while_adversarial_bodies_are_scanned(
    benchmark: Any, adversarial_gateway: Server
) -> None:
    outcome = benchmark.pedantic(
        lambda: asyncio.run(_scenario(adversarial_gateway.url)), rounds=1, iterations=1
    )
    baseline, under_load, handled = outcome
    assert all(status == 200 for status, _ in handled.values()), handled
    figures: dict[str, float | int] = {
        "tiny_p50_idle_ms": statistics.median(baseline) * 1000,
        "tiny_p50_loaded_ms": statistics.median(under_load) * 1000,
        "tiny_worst_loaded_ms": max(under_load) * 1000,
        "tiny_requests_loaded": len(under_load),
    }
    figures |= {f"{name}_ms": seconds * 1000 for name, (_, seconds) in handled.items()}
    report(benchmark, "adversarial via gateway", **figures)
