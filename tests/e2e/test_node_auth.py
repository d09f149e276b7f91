"""A node with its own key: refused without it, reached by a gateway deployment that has it."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import API_KEY, NODE_MODEL, deployment, gateway_env, start

NODE_KEY = "node-secret-key-123"


def test_node_key_is_enforced_and_sent_by_the_gateway(log_dir: Path) -> None:
    node = start("node", {"ENCLAVE_NODE_API_KEY": NODE_KEY}, log_dir)
    gateway = start("gateway", gateway_env([deployment("keyed", node, api_key=NODE_KEY)]), log_dir)
    try:
        body = {
            "model": NODE_MODEL,
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 2,
        }
        direct = httpx.post(f"{node.url}/v1/chat/completions", json=body, timeout=60)
        assert direct.status_code == 401
        assert httpx.get(f"{node.url}/v1/models").status_code == 401
        keyed = httpx.post(
            f"{node.url}/v1/chat/completions",
            json=body,
            timeout=60,
            headers={"authorization": f"Bearer {NODE_KEY}"},
        )
        assert keyed.status_code == 200
        through = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            timeout=60,
            json={**body, "model": "smollm2"},
            headers={"authorization": f"Bearer {API_KEY}"},
        )
        assert through.status_code == 200, through.text
    finally:
        gateway.stop()
        node.stop()
