"""Shared fixtures: a clean environment, and real node and gateway processes on 127.0.0.1.

Servers are started as the product starts them (``python -m infra.cli serve …``),
each on a free port, and stopped at the end of the session.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "sk-test-" + "k" * 24
NODE_MODEL = "SmolLM2-135M-Instruct"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ENCLAVE_* variable or .env leaks into a test."""
    for name in list(os.environ):
        if name.startswith("ENCLAVE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def logs(self) -> list[dict[str, Any]]:
        lines = self.log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def logged(self, match: Callable[[dict[str, Any]], bool], timeout: float = 5) -> bool:
        """Whether a log line matching ``match`` appears (lines land after the response)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(match(line) for line in self.logs()):
                return True
            time.sleep(0.05)
        return False


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without any ENCLAVE_* variable, offline, plus ``extra``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    return {**clean, "HF_HUB_OFFLINE": "1", **extra}


def launch(
    name: str,
    argv: list[str],
    env: dict[str, str],
    log_dir: Path,
    port: int,
    timeout: float = 120,
) -> Server:
    """Run ``argv`` (a Python module and its arguments) and wait until /health answers 200."""
    log = log_dir / f"{name}-{port}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", *argv],
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, port, proc, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} not ready: {log.read_text()[-2000:]}")


def start(
    service: str, env: dict[str, str], log_dir: Path, timeout: float = 120, port: int | None = None
) -> Server:
    """A gateway or node process, as ``enclave serve`` runs it, on ``port`` or a free one."""
    port = port or free_port()
    prefix = "ENCLAVE_GATEWAY" if service == "gateway" else "ENCLAVE_NODE"
    data = log_dir / f"data-{service}-{port}"  # keys, audit, knowledge: never the repo's
    full_env = {**child_env(ENCLAVE_DATA_DIR=str(data)), f"{prefix}_PORT": str(port), **env}
    argv = ["infra.cli", "serve", service]
    return launch(service, argv, full_env, log_dir, port, timeout)


def create_key(data: Path, tenant: str, *flags: str) -> str:
    """A new stored key, made with ``enclave keys create`` (its last line is the key)."""
    made = enclave_cli(data, "keys", "create", "--tenant", tenant, *flags)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


def enclave_cli(
    data: Path, *args: str, cwd: Path = ROOT, **env: str
) -> subprocess.CompletedProcess[str]:
    """``enclave ARGS…`` as a user runs it, with ``data`` as the data directory (plus ``env``)."""
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        env=child_env(ENCLAVE_DATA_DIR=str(data), **env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def deployment(
    name: str, node: Server | str, model: str = "smollm2", **extra: Any
) -> dict[str, Any]:
    base = node.url if isinstance(node, Server) else node
    return {
        "name": name,
        "model": model,
        "api_base": f"{base}/v1",
        "upstream_model": NODE_MODEL,
        **extra,
    }


def gateway_env(deployments: list[dict[str, Any]], **extra: str) -> dict[str, str]:
    return {
        "ENCLAVE_GATEWAY_API_KEYS": json.dumps([API_KEY]),
        "ENCLAVE_GATEWAY_DEPLOYMENTS": json.dumps(deployments),
        **extra,
    }


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def node(log_dir: Path) -> Iterator[Server]:
    server = start("node", {"ENCLAVE_NODE_MAX_QUEUE": "16"}, log_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gateway(node: Server, log_dir: Path) -> Iterator[Server]:
    env = gateway_env(
        [
            deployment("local-cpu", node),
            deployment("local-cpu-litellm", node, model="smollm2-litellm", via="litellm"),
        ],
        ENCLAVE_GATEWAY_MAX_BODY_BYTES="65536",
    )
    server = start("gateway", env, log_dir)
    yield server
    server.stop()


@pytest.fixture
def client(gateway: Server) -> Iterator[OpenAI]:
    with OpenAI(base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0, timeout=120) as sdk:
        yield sdk
