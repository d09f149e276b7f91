"""`enclave up`: both processes start, a first chat is answered, and both stop cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from functions.settings import Deployment, GatewaySettings, NodeSettings, Settings
from infra.launcher import keyed_deployments, node_key
from tests.conftest import ROOT, free_port


def _env(tmp_path: Path) -> tuple[dict[str, str], int, int]:
    gateway_port, node_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")},
        "HF_HUB_OFFLINE": "1",
        "ENCLAVE_GATEWAY_PORT": str(gateway_port),
        "ENCLAVE_NODE_PORT": str(node_port),
        "ENCLAVE_DATA_DIR": str(tmp_path / "data"),
    }
    return env, gateway_port, node_port


def out_of(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout + done.stderr


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_up_answers_a_first_chat_and_prints_how_to_call(tmp_path: Path) -> None:
    env, gateway_port, node_port = _env(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "infra.cli", "up", "--check"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    key_file = tmp_path / "data" / "api_key"
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    node_key = tmp_path / "data" / "node_key"  # the node always runs keyed
    assert stat.S_IMODE(node_key.stat().st_mode) == 0o600
    assert len(node_key.read_text().strip()) > 24 and node_key.read_text() not in out_of(done)
    out = done.stdout
    assert f"http://127.0.0.1:{gateway_port}/v1" in out
    assert key in out and f"Authorization: Bearer {key}" in out
    assert "curl " in out
    answer = out.split("->", 1)[1].splitlines()[0].strip().strip("'\"")
    assert answer, "the first chat came back empty"
    assert not _listening(gateway_port) and not _listening(node_port)
    logs = {name: _json_lines(tmp_path / "data" / "logs" / f"{name}.log") for name in SERVICES}
    assert {line["service.name"] for line in logs["gateway"]} == {"enclave-gateway"}
    assert {line["service.name"] for line in logs["node"]} == {"enclave-node"}
    assert any(line["message"] == "chat" for line in logs["gateway"])  # the first chat
    assert any(line["message"] == "engine ready" for line in logs["node"])
    assert '"message":"chat"' in done.stderr  # and the terminal still shows them


SERVICES = ("gateway", "node")


def _json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_sigterm_stops_both_processes(tmp_path: Path) -> None:
    env, gateway_port, node_port = _env(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "up"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 300
        for line in proc.stdout:
            if "Ctrl-C stops both processes" in line or time.monotonic() > deadline:
                break
        assert _listening(gateway_port) and _listening(node_port)
        node = f"http://127.0.0.1:{node_port}/v1/models"
        assert httpx.get(node).status_code == 401  # the node takes only its key...
        node_key = (tmp_path / "data" / "node_key").read_text().strip()
        assert httpx.get(node, headers={"authorization": f"Bearer {node_key}"}).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert not _listening(gateway_port) and not _listening(node_port)


def test_configured_deployments_of_our_node_get_its_key(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        node=NodeSettings(port=8123),
        gateway=GatewaySettings(
            deployments=[
                Deployment(name="ours", model="m", api_base="http://127.0.0.1:8123/v1"),
                Deployment(name="theirs", model="m", api_base="https://api.example/v1"),
                Deployment(name="keyed", model="m", api_base="http://x/v1", api_key="sk-own"),
            ]
        ),
    )
    key = node_key(settings)
    assert key == node_key(settings) and (tmp_path / "node_key").read_text() == key
    listed = keyed_deployments(settings, key)
    assert [d.get("api_key") for d in listed] == [key, None, "sk-own"]
    assert [Deployment.model_validate(d).name for d in listed] == ["ours", "theirs", "keyed"]
    default = keyed_deployments(Settings(data_dir=tmp_path), key)  # our node, unconfigured
    assert [(d["api_base"], d["api_key"]) for d in default] == [("http://127.0.0.1:8001/v1", key)]
