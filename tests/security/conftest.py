"""Fixtures for the adversarial suite: recording upstreams and gateways in front of them.

Every upstream here is :mod:`tests.security.recording_upstream`, a test double standing
in for a model server or a hosted provider: it records what reached it (path, headers,
body) so a test can prove what left the gateway, and answers like a real model would
(quoting sources, calling tools, streaming two characters at a time).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY, Server, free_port, gateway_env, launch, start

AUTH = {"authorization": f"Bearer {API_KEY}"}
OPERATOR_KEY = "sk-operator-Zq8wLr3nVx5TbK2mHc7JdP4s"


@dataclass
class Recorder:
    """A running recording upstream and what it has received."""

    server: Server
    record: Path

    @property
    def url(self) -> str:
        return self.server.url

    def requests(self) -> list[dict[str, Any]]:
        lines = self.record.read_text().splitlines()
        return [json.loads(line) for line in lines if line]

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests()]

    def last(self) -> dict[str, Any]:
        return self.bodies()[-1]

    def clear(self) -> None:
        self.record.write_text("")


def start_recorder(name: str, log_dir: Path) -> Recorder:
    record = log_dir / f"{name}-{free_port()}.jsonl"
    record.touch()
    port = free_port()
    env = {**os.environ, "RECORD": str(record)}
    server = launch(name, ["tests.security.recording_upstream", str(port)], env, log_dir, port)
    return Recorder(server, record)


@pytest.fixture(scope="session")
def rec_upstream(log_dir: Path) -> Iterator[Recorder]:
    """The organisation's own model server (recorded)."""
    recorder = start_recorder("upstream", log_dir)
    yield recorder
    recorder.server.stop()


@pytest.fixture(scope="session")
def rec_attacker(log_dir: Path) -> Iterator[Recorder]:
    """Where an attacker would like requests to go: nothing may ever arrive here."""
    recorder = start_recorder("attacker", log_dir)
    yield recorder
    recorder.server.stop()


def rec(name: str, model: str, url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "model": model,
        "api_base": f"{url}/v1",
        "upstream_model": "rec",
        "api_key": OPERATOR_KEY,
        **extra,
    }


@pytest.fixture(scope="session")
def rec_gateway(rec_upstream: Recorder, log_dir: Path) -> Iterator[Server]:
    """One deployment of every kind, each with a spare the router would fall back to."""
    url = rec_upstream.url
    deployments = [
        rec("relay", "relay", url),
        rec("relay-spare", "relay-spare", url),
        rec("litellm", "litellm", url, via="litellm"),
        rec("litellm-spare", "litellm-spare", url, via="litellm"),
        rec("vllm", "vllm", url, provider="hosted_vllm"),
        rec("vllm-spare", "vllm-spare", url, provider="hosted_vllm"),
        rec("external", "external", url, location="external"),
    ]
    env = gateway_env(
        deployments,
        ENCLAVE_GATEWAY_FALLBACKS=json.dumps(
            {"relay": ["relay-spare"], "litellm": ["litellm-spare"], "vllm": ["vllm-spare"]}
        ),
        ENCLAVE_GATEWAY_COLD_WAIT_S="0",
    )
    server = start("gateway", env, log_dir)
    yield server
    server.stop()
