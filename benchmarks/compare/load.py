"""The measurements: wrk runs (latency, requests/s, streams/s) and time to first token."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.compare.servers import Target, cpu_seconds

ROUTE = "/v1/chat/completions"
SCRIPT = Path(__file__).with_name("post.lua")
PROMPT = "Name one colour of the rainbow."
# A fresh message each request (wrk fills in the number, post.lua): users do not send one
# text ten thousand times, and a gateway that remembers its scans (Enclave's scan memo)
# would otherwise be measured answering from memory. --same-prompt sends PROMPT alone.
FRESH = " My ticket is __N__."
STREAM_CHUNKS = 64
PACED_WORDS = 16  # 20 ms apart: a third of a second a stream


def body(model: str, max_tokens: int, stream: bool, fresh: bool = False) -> bytes:
    messages = [{"role": "user", "content": PROMPT + (FRESH if fresh else "")}]
    return orjson.dumps(
        {"model": model, "messages": messages, "max_tokens": max_tokens, "stream": stream}
    )


def numbered(payload: bytes, number: str) -> bytes:
    """``payload`` with its fresh message's number filled in (as post.lua does)."""
    return payload.replace(b"__N__", number.encode())


def check(target: Target) -> None:
    """One plain answer and one 64-chunk stream, before any load: a 401 or a 404
    measured at full speed would be a fine figure for nothing."""
    headers = {"content-type": "application/json"}
    if target.key:
        headers["authorization"] = f"Bearer {target.key}"
    url = target.url + ROUTE
    plain = httpx.post(url, content=body(target.fast_model, 1, False), headers=headers, timeout=30)
    if plain.status_code != 200 or plain.json()["choices"][0]["message"]["content"] != "ok":
        raise RuntimeError(f"{target.name}: plain answer {plain.status_code}: {plain.text[:500]}")
    content = body(target.fast_model, STREAM_CHUNKS, True)
    text = ""
    with httpx.stream("POST", url, content=content, headers=headers, timeout=30) as streamed:
        for line in streamed.iter_lines():
            if line.startswith("data: {"):
                for choice in orjson.loads(line[6:]).get("choices") or []:
                    text += (choice.get("delta") or {}).get("content") or ""
    # a proxy may regroup the pieces (Enclave's output guard holds some back): the text counts
    if text != "ok" * STREAM_CHUNKS:
        raise RuntimeError(f"{target.name}: streamed {text[:200]!r}, not {STREAM_CHUNKS} × 'ok'")


def wrk(target: Target, payload: bytes, connections: int, seconds: float) -> dict[str, Any]:
    """One wrk run (one thread): requests/s and latency percentiles in ms."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is missing: apt-get install -y wrk")
    env = {
        **os.environ,
        "BENCH_BODY": payload.decode(),
        "BENCH_AUTH": target.key,
        "BENCH_RUN": uuid.uuid4().hex[:8],  # a fresh message's number is new in every run
    }
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
        target.url + ROUTE,
    ]
    run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 30)
    line = next((x for x in run.stdout.splitlines() if x.startswith("BENCH ")), None)
    if run.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed on {target.name}: {run.stdout}{run.stderr}")
    figures = json.loads(line[len("BENCH ") :])
    failed = sum(figures[k] for k in ("connect", "read", "write", "status", "timeout"))
    if failed * 100 > figures["requests"]:  # past 1%: the figure would measure failures
        raise RuntimeError(f"{target.name}: {failed} failed requests under load: {figures}")
    if failed:  # a request shed under overload: counted, said, and the run goes on
        print(
            f"  {target.name}: {failed} of {figures['requests']} failed: {figures}", file=sys.stderr
        )
    return {
        "failed": failed,
        "rps": figures["requests"] / (figures["duration_us"] / 1e6),
        "p50_ms": figures["p50_us"] / 1000,
        "p99_ms": figures["p99_us"] / 1000,
        "requests": figures["requests"],
    }


def load_round(target: Target, seconds: float, fresh: bool = True) -> dict[str, float]:
    """Sequential latency, plain requests/s at 32 connections, streams/s at 8."""
    plain = body(target.fast_model, 1, False, fresh)
    stream = body(target.fast_model, STREAM_CHUNKS, True, fresh)
    wrk(target, plain, 4, 2)  # warm-up: connections, caches, the JIT of whatever has one
    sequential = wrk(target, plain, 1, seconds / 2)
    # CPU per request: far less swayed than req/s by whatever else the host is running
    cpu = cpu_seconds(target.pid)
    concurrent = wrk(target, plain, 32, seconds)
    cpu_per_request = (cpu_seconds(target.pid) - cpu) / max(1, concurrent["requests"])
    cpu = cpu_seconds(target.pid)
    streams = wrk(target, stream, 8, seconds)
    cpu_per_stream = (cpu_seconds(target.pid) - cpu) / max(1, streams["requests"])
    return {
        "seq_p50_ms": sequential["p50_ms"],
        "seq_p99_ms": sequential["p99_ms"],
        "rps_32": concurrent["rps"],
        "p50_ms_32": concurrent["p50_ms"],
        "streams_8": streams["rps"],
        "cpu_ms_per_request": cpu_per_request * 1000,
        "cpu_ms_per_stream": cpu_per_stream * 1000,
        "failed": sequential["failed"] + concurrent["failed"] + streams["failed"],
    }


async def _first_content(client: httpx.AsyncClient, target: Target, payload: bytes) -> float:
    """Seconds from sending the request to the first chunk with non-empty content."""
    headers = {"content-type": "application/json"}
    if target.key:
        headers["authorization"] = f"Bearer {target.key}"
    first: float | None = None
    started = time.perf_counter()
    async with client.stream("POST", target.url + ROUTE, content=payload, headers=headers) as r:
        if r.status_code != 200:
            raise RuntimeError(f"{target.name}: paced stream {r.status_code}")
        async for line in r.aiter_lines():  # read to the end: a hang-up would be measured too
            if first is None and line.startswith("data: {"):
                choices = orjson.loads(line[6:]).get("choices") or [{}]
                if (choices[0].get("delta") or {}).get("content"):
                    first = time.perf_counter() - started
    if first is None:
        raise RuntimeError(f"{target.name}: the paced stream had no content")
    return first


async def _ttft(target: Target, count: int, fresh: bool) -> list[float]:
    payload = body(target.paced_model, PACED_WORDS, True, fresh)
    run = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(timeout=30) as client:
        for n in range(3):
            await _first_content(client, target, numbered(payload, f"{run}-w{n}"))
        return [
            await _first_content(client, target, numbered(payload, f"{run}-{n}"))
            for n in range(count)
        ]


def ttft(target: Target, count: int, fresh: bool = True) -> dict[str, float]:
    """Time to first content chunk against the paced upstream, sequential: p50, p99 in ms."""
    times = sorted(asyncio.run(_ttft(target, count, fresh)))
    return {
        "ttft_p50_ms": statistics.median(times) * 1000,
        "ttft_p99_ms": times[min(len(times) - 1, round(0.99 * (len(times) - 1)))] * 1000,
    }
