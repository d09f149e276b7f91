"""What the gateway sustains against a fast upstream: req/s, CPU per request, CPU per chunk.

The upstream is the fake (a test double that answers instantly), so every figure
is the gateway's own cost, not the model's.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import orjson
import pytest

from benchmarks.conftest import (
    AUTH,
    FAKE_MODEL,
    Stack,
    Target,
    chat_body,
    cpu_seconds,
    report,
    target,
)

ROUTE = "/v1/chat/completions"
_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


async def _drive(t: Target, body: bytes, total: int, concurrency: int) -> None:
    """Keep-alive HTTP/1.1 over raw asyncio streams: a load generator far cheaper than httpx."""
    port = int(t.url.rsplit(":", 1)[1])
    lines = [f"POST {ROUTE} HTTP/1.1", f"host: 127.0.0.1:{port}", "content-type: application/json"]
    lines += [f"{k}: {v}" for k, v in t.headers.items()]
    request = ("\r\n".join([*lines, f"content-length: {len(body)}", "", ""])).encode() + body
    left = iter(range(total))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in left:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200"), head
                length = _LENGTH.search(head)
                assert length is not None, head
                await reader.readexactly(int(length.group(1)))
        finally:
            writer.close()
            await writer.wait_closed()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


@pytest.mark.parametrize("name", ["fake-direct", "fake-via-gateway"])
def test_requests_per_second(benchmark: Any, stack: Stack, name: str) -> None:
    """2,000 non-streamed requests, 32 at a time; fake-direct is the load generator's ceiling."""
    t = target(stack, name)
    total, concurrency, rounds, warmup = 2000, 32, 3, 1
    body = orjson.dumps(chat_body(t.model))
    cpu = cpu_seconds(t.pid)
    benchmark.pedantic(
        lambda: asyncio.run(_drive(t, body, total, concurrency)),
        rounds=rounds,
        iterations=1,
        warmup_rounds=warmup,
    )
    cpu_ms = (cpu_seconds(t.pid) - cpu) * 1000 / (total * (rounds + warmup))
    rps = total / benchmark.stats.stats.median
    report(
        benchmark,
        f"throughput {name}",
        rps=rps,
        server_cpu_ms_per_req=cpu_ms,
        cpu_bound_rps_per_core=1000 / cpu_ms,
    )


def _stream(client: httpx.Client, url: str, content: bytes) -> int:
    events = 0
    headers = {**AUTH, "content-type": "application/json"}
    with client.stream("POST", url + ROUTE, content=content, headers=headers) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            events += line.startswith("data:")
    return events


def test_stream_cpu_per_chunk(benchmark: Any, stack: Stack) -> None:
    """Gateway CPU per relayed chunk: 200-chunk streams minus 1-chunk streams, over 199."""
    gateway = stack.gateway()
    pid, chunks, rounds, warmup, base_n = gateway.proc.pid, 200, 40, 5, 60
    small = orjson.dumps(chat_body(FAKE_MODEL, max_tokens=1, stream=True))
    large = orjson.dumps(chat_body(FAKE_MODEL, max_tokens=chunks, stream=True))
    with httpx.Client(timeout=60) as client:
        for _ in range(10):
            _stream(client, gateway.url, small)
        cpu = cpu_seconds(pid)
        for _ in range(base_n):
            _stream(client, gateway.url, small)
        per_small = (cpu_seconds(pid) - cpu) / base_n
        cpu = cpu_seconds(pid)
        started = time.perf_counter()
        benchmark.pedantic(
            lambda: _stream(client, gateway.url, large),
            rounds=rounds,
            iterations=1,
            warmup_rounds=warmup,
        )
        per_large = (cpu_seconds(pid) - cpu) / (rounds + warmup)
        wall = (time.perf_counter() - started) / (rounds + warmup)
    per_chunk_us = (per_large - per_small) / (chunks - 1) * 1e6
    report(
        benchmark,
        f"stream {chunks} chunks via gateway",
        gateway_cpu_us_per_chunk=per_chunk_us,
        gateway_cpu_ms_per_stream=per_large * 1000,
        gateway_cpu_ms_per_1_chunk_stream=per_small * 1000,
        wall_ms_per_stream=wall * 1000,
    )
