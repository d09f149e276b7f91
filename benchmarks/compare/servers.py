"""The benchmark's processes: each in its own process group, all stopped on the way out."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk-bench-" + "k" * 24
MASTER_KEY = "sk-bench-master-" + "m" * 16
UPSTREAM_MODEL = "fake-model"
FAST, PACED = "fake", "fake-paced"  # the model names both proxies serve


@dataclass(frozen=True)
class Target:
    """Where to send chat requests: base URL, model names and key."""

    name: str
    url: str
    fast_model: str
    paced_model: str
    key: str
    pid: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def process(
    name: str, argv: list[str], env: dict[str, str], log: Path, health: str, timeout: float = 120
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` until the block ends; ready once ``health`` answers 200.

    Its own session, so the whole group (uvicorn workers, LiteLLM's children) is
    signalled: SIGTERM, then SIGKILL after 10 s.
    """
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {log.read_text()[-3000:]}")
            try:
                if httpx.get(health, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready in {timeout:g} s: {log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield proc
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            # the leader is gone; a child it left behind still gets the next signal
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ENCLAVE_", "LITELLM_"))}
    clean.pop("DATABASE_URL", None)
    return {**clean, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **extra}


def cpu_seconds(group: int) -> float:
    """User + system CPU time so far of every live process in process group ``group``
    (a server and the workers it started), from /proc."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[2]) == group:  # pgrp; utime and stime are fields 14 and 15
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def fake_upstream(stack: ExitStack, logs: Path, delay_ms: int = 0) -> tuple[str, int]:
    """A fake upstream (test double) on a free port: its base URL (``…/v1``) and pid."""
    port = free_port()
    argv = [sys.executable, "-m", "benchmarks.fake_upstream", str(port), str(delay_ms)]
    url = f"http://127.0.0.1:{port}"
    proc = stack.enter_context(
        process(f"fake-{delay_ms}ms", argv, _env(), logs / f"fake-{port}.log", f"{url}/health")
    )
    return f"{url}/v1", proc.pid


def direct(fast: str, paced: str, pid: int) -> tuple[Target, Target]:
    """The upstreams themselves: no proxy (two targets, one per upstream; ``pid``: the fast one)."""
    return (
        Target("direct", fast.removesuffix("/v1"), UPSTREAM_MODEL, UPSTREAM_MODEL, "", pid),
        Target("direct", paced.removesuffix("/v1"), UPSTREAM_MODEL, UPSTREAM_MODEL, "", 0),
    )


def enclave(
    stack: ExitStack, logs: Path, fast: str, paced: str, args: list[str], env: dict[str, str]
) -> Target:
    """Enclave's gateway as ``enclave serve gateway`` runs it, defaults but the answer cache."""
    port = free_port()
    deployments = [
        {"name": "fake", "model": FAST, "api_base": fast, "upstream_model": UPSTREAM_MODEL},
        {"name": "paced", "model": PACED, "api_base": paced, "upstream_model": UPSTREAM_MODEL},
    ]
    full_env = _env(
        ENCLAVE_DATA_DIR=str(logs / f"enclave-data-{port}"),
        ENCLAVE_GATEWAY_PORT=str(port),
        ENCLAVE_GATEWAY_API_KEYS=json.dumps([API_KEY]),
        ENCLAVE_GATEWAY_DEPLOYMENTS=json.dumps(deployments),
        # the same question again and again would otherwise be answered from the cache
        ENCLAVE_CACHE_BACKEND="off",
        **env,
    )
    argv = [sys.executable, "-m", "infra.cli", "serve", "gateway", *args]
    url = f"http://127.0.0.1:{port}"
    proc = stack.enter_context(
        process("enclave", argv, full_env, logs / f"enclave-{port}.log", f"{url}/health")
    )
    _settled(url)
    return Target("enclave", url, FAST, PACED, API_KEY, proc.pid)


def _settled(url: str, timeout_s: float = 120) -> None:
    """Wait for what the gateway starts in the background after it answers (the worker
    process for large inputs, 2 s later): load measures the steady state, and the
    worker's start would otherwise be charged to the requests measured beside it."""
    deadline = time.monotonic() + timeout_s
    auth = {"authorization": f"Bearer {API_KEY}"}
    while not httpx.get(f"{url}/health", headers=auth, timeout=10).json()["scanner"]["ready"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the gateway's scanner was not ready within {timeout_s:.0f} s")
        time.sleep(0.1)


def litellm(stack: ExitStack, logs: Path, fast: str, paced: str, venv: Path) -> Target:
    """LiteLLM proxy, one worker, a master key, no database."""
    port = free_port()
    models = [
        {
            "model_name": name,
            "litellm_params": {
                "model": f"openai/{UPSTREAM_MODEL}",
                "api_base": base,
                "api_key": "sk-upstream",
            },
        }
        for name, base in ((FAST, fast), (PACED, paced))
    ]
    config = logs / f"litellm-{port}.yaml"  # JSON is YAML
    config.write_text(
        json.dumps(
            {
                "model_list": models,
                "general_settings": {"master_key": MASTER_KEY},
                "litellm_settings": {"telemetry": False},
            }
        )
    )
    argv = [
        str(venv / "bin" / "litellm"),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    env = _env(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR")
    url = f"http://127.0.0.1:{port}"
    proc = stack.enter_context(
        process(
            "litellm",
            argv,
            env,
            logs / f"litellm-{port}.log",
            f"{url}/health/liveliness",
            timeout=180,
        )
    )
    return Target("litellm", url, FAST, PACED, MASTER_KEY, proc.pid)
