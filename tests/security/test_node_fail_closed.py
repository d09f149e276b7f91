"""I8 fail closed: a node reachable beyond its own host does not start without a key.

Attacker 2, anyone on the network: a node bound to a public address (or served
by Modal at a public URL) without ``ENCLAVE_NODE_API_KEY`` would hand its GPU and
its answers to whoever finds the port. It refuses to start instead, with one clear
line and a non-zero status; with the key it starts and refuses keyless callers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import infra.modal_app as modal_app
from inference_node.exposure import NodeKeyMissingError
from tests.conftest import NODE_MODEL, ROOT, child_env, free_port, start

NODE_KEY = "sk-node-" + "n" * 24


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "node.internal"])
def test_a_node_off_loopback_without_a_key_refuses_to_start(tmp_path: Path, host: str) -> None:
    env = child_env(
        ENCLAVE_DATA_DIR=str(tmp_path),
        ENCLAVE_NODE_HOST=host,
        ENCLAVE_NODE_PORT=str(free_port()),
    )
    done = subprocess.run(
        [sys.executable, "-m", "infra.cli", "serve", "node"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "ENCLAVE_NODE_API_KEY" in done.stderr and host in done.stderr
    assert "Traceback" not in done.stderr


def test_a_keyed_node_off_loopback_starts_and_refuses_keyless_callers(log_dir: Path) -> None:
    node = start(
        "node", {"ENCLAVE_NODE_HOST": "0.0.0.0", "ENCLAVE_NODE_API_KEY": NODE_KEY}, log_dir
    )
    try:
        body = {
            "model": NODE_MODEL,
            "max_tokens": 1,
            "messages": [{"role": "user", "content": "hi"}],
        }
        keyless = httpx.post(f"{node.url}/v1/chat/completions", json=body, timeout=60)
        assert keyless.status_code == 401
        keyed = httpx.post(
            f"{node.url}/v1/chat/completions",
            json=body,
            timeout=60,
            headers={"authorization": f"Bearer {NODE_KEY}"},
        )
        assert keyed.status_code == 200, keyed.text
    finally:
        node.stop()


def test_a_modal_node_without_a_key_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(NodeKeyMissingError, match="ENCLAVE_NODE_API_KEY"):
        modal_app.node_settings()  # what the container's @modal.enter runs first
    monkeypatch.setenv("ENCLAVE_NODE_API_KEY", NODE_KEY)
    settings = modal_app.node_settings()
    assert settings.node.api_key is not None
    assert settings.node.api_key.get_secret_value() == NODE_KEY
