"""Shared fixtures for the benchmarks: real node, fake upstream and gateway processes.

The servers are started lazily, once per session, the way the tests start them
(:func:`tests.conftest.start`). :meth:`Stack.stop_all` frees the cores for the raw
llama.cpp benchmark; any server asked for afterwards is started again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    API_KEY,
    NODE_MODEL,
    ROOT,
    Server,
    deployment,
    free_port,
    gateway_env,
    launch,
    start,
)
from tests.conftest import clean_env as clean_env
from tests.conftest import log_dir as log_dir

__all__ = [
    "API_KEY",
    "NODE_MODEL",
    "ROOT",
    "Server",
    "cpu_seconds",
    "deployment",
    "free_port",
    "gateway_env",
    "report",
]

PROMPT = [{"role": "user", "content": "Name one colour of the rainbow."}]
AUTH = {"authorization": f"Bearer {API_KEY}"}
FAKE_MODEL = "fake"
_TICK = os.sysconf("SC_CLK_TCK")
NODE_ENV = {"ENCLAVE_NODE_MAX_QUEUE": "64", "ENCLAVE_NODE_THREADS": "1"}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (from /proc, clock-tick resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime: fields 14 and 15


def ms_stats(benchmark: Any) -> tuple[float, float]:
    """(median, mean) of the benchmark's rounds, in milliseconds."""
    stats = benchmark.stats.stats
    return stats.median * 1000, stats.mean * 1000


def report(benchmark: Any, label: str, **figures: float | int | str) -> None:
    """Put ``figures`` in the saved benchmark data and print them on one line."""
    rounded = {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}
    benchmark.extra_info.update(rounded)
    print(f"\n[bench] {label}: " + ", ".join(f"{k}={v}" for k, v in rounded.items()))


def start_fake(log_dir: Path, timeout: float = 30) -> Server:
    """The fake upstream (a test double, see :mod:`benchmarks.fake_upstream`) on a free port."""
    port = free_port()
    argv = ["benchmarks.fake_upstream", str(port)]
    return launch("fake-upstream", argv, dict(os.environ), log_dir, port, timeout)


def chat_body(model: str, max_tokens: int = 1, stream: bool = False) -> dict[str, Any]:
    return {
        "model": model,
        "messages": PROMPT,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
    }


def gateway_deployments(node: Server, fake: Server) -> list[dict[str, Any]]:
    return [
        deployment("local-cpu", node),
        deployment("fake-upstream", fake, model=FAKE_MODEL, upstream_model="fake-model"),
    ]


class Stack:
    """Node, fake upstream and gateway (relaying to both), each started on first use."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._node: Server | None = None
        self._fake: Server | None = None
        self._gateway: Server | None = None
        self._gateway_for: tuple[int, int] = (0, 0)

    @staticmethod
    def _alive(server: Server | None) -> bool:
        return server is not None and server.proc.poll() is None

    def node(self) -> Server:
        if not self._alive(self._node):
            self._node = start("node", NODE_ENV, self.log_dir)
            body = chat_body(NODE_MODEL, max_tokens=4)
            httpx.post(f"{self._node.url}/v1/chat/completions", json=body, timeout=120)
        assert self._node is not None
        return self._node

    def fake(self) -> Server:
        if not self._alive(self._fake):
            self._fake = start_fake(self.log_dir)
        assert self._fake is not None
        return self._fake

    def gateway(self) -> Server:
        node, fake = self.node(), self.fake()
        if not self._alive(self._gateway) or self._gateway_for != (node.port, fake.port):
            if self._gateway is not None:
                self._gateway.stop()
            # the same question again and again: without this, every round after the
            # first would be a response-cache hit (benchmarks/test_cache.py measures those)
            env = gateway_env(gateway_deployments(node, fake), ENCLAVE_CACHE_BACKEND="off")
            self._gateway = start("gateway", env, self.log_dir)
            self._gateway_for = (node.port, fake.port)
        assert self._gateway is not None
        return self._gateway

    def stop_all(self) -> None:
        for server in (self._gateway, self._fake, self._node):
            if server is not None:
                server.stop()


@pytest.fixture(scope="session")
def stack(log_dir: Path) -> Iterator[Stack]:
    servers = Stack(log_dir)
    yield servers
    servers.stop_all()


@pytest.fixture
def node(stack: Stack) -> Server:
    return stack.node()


@pytest.fixture
def fake(stack: Stack) -> Server:
    return stack.fake()


@pytest.fixture
def gateway(stack: Stack) -> Server:
    return stack.gateway()


@dataclass
class Target:
    """Where a benchmark sends chat requests, and whose CPU time it charges."""

    url: str
    model: str
    headers: dict[str, str]
    pid: int  # the gateway, or the upstream itself when going direct


def target(stack: Stack, name: str) -> Target:
    """``node-direct``, ``node-via-gateway``, ``fake-direct`` or ``fake-via-gateway``."""
    upstream, path = name.split("-", 1)
    if path == "direct":
        server = stack.node() if upstream == "node" else stack.fake()
        model = NODE_MODEL if upstream == "node" else "fake-model"
        return Target(server.url, model, {}, server.proc.pid)
    gateway = stack.gateway()
    model = "smollm2" if upstream == "node" else FAKE_MODEL
    return Target(gateway.url, model, AUTH, gateway.proc.pid)
