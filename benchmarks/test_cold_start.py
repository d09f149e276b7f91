"""Gateway cold start (process start to first answered chat) and the cost of importing litellm."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.conftest import (
    AUTH,
    ROOT,
    Server,
    Stack,
    chat_body,
    deployment,
    free_port,
    gateway_env,
    report,
)

IMPORT_LITELLM = (
    "import time; t = time.perf_counter(); import functions.llm; print(time.perf_counter() - t)"
)


def _cold_start(node: Server, log: Path, started_procs: list[subprocess.Popen[bytes]]) -> float:
    """Seconds from Popen until a chat completion through the new gateway has come back.

    The process is left running (stopped untimed, by :func:`_stop_all`).
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env.update(gateway_env([deployment("local-cpu", node)]))
    env.update({"ENCLAVE_GATEWAY_PORT": str(port), "HF_HUB_OFFLINE": "1"})
    body = chat_body("smollm2")
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    with log.open("ab") as sink:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "serve", "gateway"],
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    started_procs.append(proc)
    while proc.poll() is None:
        try:
            response = httpx.post(url, json=body, headers=AUTH, timeout=60)
        except httpx.TransportError:
            time.sleep(0.02)
            continue
        assert response.status_code == 200, response.text
        return time.perf_counter() - started
    raise RuntimeError(f"gateway exited: {log.read_text()[-2000:]}")


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    while procs:
        proc = procs.pop()
        proc.terminate()
        proc.wait(timeout=15)


def test_gateway_cold_start(benchmark: Any, stack: Stack, log_dir: Path) -> None:
    node = stack.node()  # already warm: it answered a first chat when it started
    log = log_dir / "cold-start-gateways.log"
    seconds: list[float] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        benchmark.pedantic(
            lambda: seconds.append(_cold_start(node, log, procs)),
            setup=lambda: _stop_all(procs),
            rounds=3,
            warmup_rounds=1,
        )
    finally:
        _stop_all(procs)
    timed = sorted(seconds[1:])
    report(benchmark, "gateway cold start", median_s=timed[1], min_s=timed[0], max_s=timed[-1])


def test_import_litellm(benchmark: Any) -> None:
    """``import functions.llm`` (litellm and what it pulls in) in a fresh interpreter."""
    seconds: list[float] = []

    def run() -> None:
        command = [sys.executable, "-c", IMPORT_LITELLM]
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        seconds.append(float(out.stdout.strip().splitlines()[-1]))

    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    timed = sorted(seconds[1:])
    report(benchmark, "import litellm", median_s=timed[1], min_s=timed[0], max_s=timed[-1])
