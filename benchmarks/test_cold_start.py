"""Gateway cold start: process start to first answered chat, the memory it then holds,
and the cost of importing litellm (which a gateway without translated deployments skips).

The upstream is the fake one (answers at once), so the figures are the gateway's own:
``enclave serve gateway`` started fresh each round, asked for a chat until one comes
back, with the CPU time the gateway spent by then (on a busy machine, wall time mostly
measures waiting for a core). Memory is the process's resident set (VmRSS) once that
chat is answered, and again after a second of idling (background threads settled).
The scanner's worker process is not counted: it is a process of its own. The
checkout's bytecode is compiled first, as an installed package's is.
"""

from __future__ import annotations

import compileall
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.conftest import (
    AUTH,
    FAKE_MODEL,
    ROOT,
    Server,
    Stack,
    chat_body,
    cpu_seconds,
    deployment,
    free_port,
    gateway_env,
    report,
)
from tests.conftest import child_env

IMPORT_LITELLM = (
    "import time; t = time.perf_counter(); from functions.llm import load; load(); "
    "print(time.perf_counter() - t)"
)
ROUNDS = 5
IDLE_S = 1.0


@dataclass
class ColdStart:
    seconds: float  # Popen to the first chat answered
    cpu_s: float  # the gateway's CPU time by then: what a busy machine's wall time hides
    rss_chat_mib: float  # right after it
    rss_idle_mib: float  # IDLE_S later, or once a chat to ``also`` came back
    also_s: float | None = None  # Popen to that chat answered


def rss_mib(pid: int) -> float:
    """Resident set size of process ``pid``, in MiB (VmRSS, from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _cold_start(
    deployments: list[dict[str, Any]],
    log_dir: Path,
    procs: list[subprocess.Popen[bytes]],
    also: str | None = None,
) -> ColdStart:
    """One fresh gateway, asked for a chat until one comes back (it is left running);
    then, if ``also`` names a model, a chat to that model."""
    port = free_port()
    env = child_env(ENCLAVE_DATA_DIR=str(log_dir / f"data-cold-{port}"))
    env.update(gateway_env(deployments, ENCLAVE_GATEWAY_PORT=str(port)))
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    log = log_dir / "cold-start-gateways.log"
    with log.open("ab") as sink:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "serve", "gateway"],
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    procs.append(proc)
    while proc.poll() is None:
        try:
            response = httpx.post(url, json=chat_body(FAKE_MODEL), headers=AUTH, timeout=60)
        except httpx.TransportError:
            time.sleep(0.01)
            continue
        seconds = time.perf_counter() - started
        assert response.status_code == 200, response.text
        cpu_s, rss_chat = cpu_seconds(proc.pid), rss_mib(proc.pid)
        if also is None:
            time.sleep(IDLE_S)
            return ColdStart(seconds, cpu_s, rss_chat, rss_mib(proc.pid))
        response = httpx.post(url, json=chat_body(also), headers=AUTH, timeout=120)
        also_s = time.perf_counter() - started
        assert response.status_code == 200, response.text
        return ColdStart(seconds, cpu_s, rss_chat, rss_mib(proc.pid), also_s)
    raise RuntimeError(f"gateway exited: {log.read_text()[-2000:]}")


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    while procs:
        proc = procs.pop()
        proc.terminate()
        proc.wait(timeout=15)


def _relayed(fake: Server) -> dict[str, Any]:
    return deployment("fake-upstream", fake, model=FAKE_MODEL, upstream_model="fake")


def _bench(
    benchmark: Any,
    deployments: list[dict[str, Any]],
    log_dir: Path,
    label: str,
    also: str | None = None,
) -> None:
    runs: list[ColdStart] = []
    procs: list[subprocess.Popen[bytes]] = []
    # bytecode compiled, as pip leaves an installed package and `just install` this
    # checkout: with PYTHONDONTWRITEBYTECODE set, each start would compile every module
    for package in ("functions", "infra", "inference_node"):
        compileall.compile_dir(ROOT / package, quiet=1)
    try:
        benchmark.pedantic(
            lambda: runs.append(_cold_start(deployments, log_dir, procs, also)),
            setup=lambda: _stop_all(procs),
            rounds=ROUNDS,
            warmup_rounds=1,  # the first start after a while reads everything from disk
        )
    finally:
        _stop_all(procs)
    timed = runs[1:]
    also_s = [r.also_s for r in timed if r.also_s is not None]
    report(
        benchmark,
        label,
        **({"median_translated_chat_s": statistics.median(also_s)} if also_s else {}),
        median_s=statistics.median(r.seconds for r in timed),
        min_s=min(r.seconds for r in timed),
        max_s=max(r.seconds for r in timed),
        median_cpu_s=statistics.median(r.cpu_s for r in timed),
        rss_after_chat_mib=statistics.median(r.rss_chat_mib for r in timed),
        rss_idle_mib=statistics.median(r.rss_idle_mib for r in timed),
    )


def test_gateway_cold_start(benchmark: Any, stack: Stack, log_dir: Path) -> None:
    """Default settings: a relayed deployment, no collections asked for."""
    _bench(benchmark, [_relayed(stack.fake())], log_dir, "gateway cold start")


def test_gateway_cold_start_with_a_translated_deployment(
    benchmark: Any, stack: Stack, log_dir: Path
) -> None:
    """A gateway that also has a ``via: litellm`` deployment imports litellm in the
    background at start-up: what that costs the first relayed chat, when the first
    translated chat is answered, and the memory held after both."""
    fake = stack.fake()
    translated = deployment("fake-litellm", fake, model="fake-litellm", via="litellm")
    label = "gateway cold start, litellm deployment too"
    _bench(benchmark, [_relayed(fake), translated], log_dir, label, also="fake-litellm")


def test_import_litellm(benchmark: Any) -> None:
    """litellm's import and configuration (:func:`functions.llm.load`) in a fresh interpreter."""
    seconds: list[float] = []

    def run() -> None:
        command = [sys.executable, "-c", IMPORT_LITELLM]
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        seconds.append(float(out.stdout.strip().splitlines()[-1]))

    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    timed = sorted(seconds[1:])
    report(benchmark, "import litellm", median_s=timed[1], min_s=timed[0], max_s=timed[-1])
