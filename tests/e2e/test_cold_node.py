"""Scale to zero that users never feel, and a dead node that users are told about at once.

A deployment marked ``scale_to_zero`` that cannot be reached is cold: it is woken and
waited for. Any other that refuses connections is down: a 503 that says so, at once.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import API_KEY, Server, deployment, free_port, gateway_env, start
from tests.e2e.test_filtering import echo, echo_deployment  # noqa: F401  (fixture)
from tests.openapi import validate

AUTH = {"authorization": f"Bearer {API_KEY}"}
HELLO = {"model": "smollm2", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}


def test_a_stream_waits_for_a_late_node_with_keepalives(log_dir: Path) -> None:
    node_port = free_port()
    env = gateway_env(
        [deployment("late", f"http://127.0.0.1:{node_port}", scale_to_zero=True)],
        ENCLAVE_GATEWAY_COLD_WAIT_S="90",
        ENCLAVE_GATEWAY_KEEPALIVE_S="0.5",
        ENCLAVE_GATEWAY_PROBE_INTERVAL_S="0.3",
    )
    gateway = start("gateway", env, log_dir)
    lines: list[str] = []
    answered: dict[str, Any] = {}

    def ask_streaming() -> None:
        with httpx.stream(
            "POST",
            f"{gateway.url}/v1/chat/completions",
            headers=AUTH,
            json={**HELLO, "stream": True},
            timeout=120,
        ) as response:
            answered["status"] = response.status_code
            lines.extend(response.iter_lines())

    def ask_plain() -> None:
        answered["plain"] = httpx.post(
            f"{gateway.url}/v1/chat/completions", headers=AUTH, json=HELLO, timeout=120
        )

    node: Server | None = None
    try:
        time.sleep(1.0)  # the probe has found the node down: it is cold
        waiters = [threading.Thread(target=ask_streaming), threading.Thread(target=ask_plain)]
        for waiter in waiters:
            waiter.start()
        time.sleep(2.0)
        assert any(line.startswith(": waiting") for line in lines), "no keep-alive while cold"
        node = start("node", {}, log_dir, port=node_port)
        for waiter in waiters:
            waiter.join(120)
    finally:
        gateway.stop()
        if node is not None:
            node.stop()
    assert answered["status"] == 200
    events = [line for line in lines if line]
    assert events[0].startswith(": waiting") and events[-1] == "data: [DONE]"
    content = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in content if c["choices"])
    assert answered["plain"].status_code == 200


def test_data_that_may_leave_goes_to_the_fallback_at_once(
    echo: tuple[str, Path],  # noqa: F811
    log_dir: Path,
) -> None:
    url, record = echo
    cold = f"http://127.0.0.1:{free_port()}"
    env = gateway_env(
        [
            {"name": "gpu", "model": "chat", "api_base": f"{cold}/v1", "scale_to_zero": True},
            echo_deployment(url, "chat-cloud", "external"),
        ],
        ENCLAVE_GATEWAY_FALLBACKS=json.dumps({"chat": ["chat-cloud"]}),
        ENCLAVE_GATEWAY_COLD_WAIT_S="2",
        ENCLAVE_GATEWAY_PROBE_INTERVAL_S="0.3",
    )
    gateway = start("gateway", env, log_dir)
    try:
        time.sleep(1.0)
        before = record.read_text()
        started = time.perf_counter()
        public = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            headers=AUTH,
            timeout=30,
            json={**HELLO, "model": "chat"},
        )
        public_s = time.perf_counter() - started
        confidential = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            headers=AUTH,
            timeout=30,
            json={
                **HELLO,
                "model": "chat",
                "messages": [{"role": "user", "content": "ID 11010519491231002X"}],
            },
        )
        assert gateway.logged(lambda line: line["message"] == "waking deployment")
    finally:
        gateway.stop()
    assert public.status_code == 200 and public.headers["x-enclave-deployment"] == "echo-external"
    print(f"\npublic request answered by the fallback in {public_s * 1000:.0f} ms")
    assert confidential.status_code == 503
    assert "starting up" in confidential.json()["error"]["message"]
    assert "11010519491231002X" not in record.read_text()[len(before) :]
    assert "<ID_CARD_1>" not in record.read_text()[len(before) :]


def test_a_dead_local_node_is_down_at_once_and_serves_again_when_restarted(
    log_dir: Path,
) -> None:
    """A node that does not scale to zero and refuses connections is down: a 503 that says
    so, at once, plain and streamed (with a 120 s cold wait, a 30 s client would time out
    if the gateway waited); restarted on its port, it answers the very next request."""
    node = start("node", {}, log_dir)
    env = gateway_env(
        [deployment("local", node)],
        ENCLAVE_GATEWAY_COLD_WAIT_S="120",
        ENCLAVE_GATEWAY_PROBE_INTERVAL_S="0.3",
    )
    gateway = start("gateway", env, log_dir)
    restarted: Server | None = None
    try:
        with OpenAI(
            base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0, timeout=30
        ) as sdk:
            first = sdk.chat.completions.create(**HELLO)
            assert first.choices[0].message.content is not None
            node.proc.kill()  # the process is gone: nothing listens on its port
            node.proc.wait()
            refused: list[openai.APIStatusError] = []
            for stream in (False, True):
                with pytest.raises(openai.APIStatusError) as caught:
                    sdk.chat.completions.create(**HELLO, stream=stream)
                refused.append(caught.value)
            health = httpx.get(f"{gateway.url}/health", headers=AUTH, timeout=10).json()
            restarted = start("node", {}, log_dir, port=node.port)
            again = sdk.chat.completions.create(**HELLO)
    finally:
        gateway.stop()
        node.stop()
        if restarted is not None:
            restarted.stop()
    for error in refused:
        assert error.status_code == 503
        assert error.response.headers["retry-after"] == "5"
        assert error.code == "deployment_unavailable"
        assert "is down" in error.message and "starting up" not in error.message
        validate("ErrorResponse", error.response.json())
    assert health["deployments"] == {"local": "down"}
    assert again.choices[0].message.content is not None
    assert not gateway.logged(lambda line: line["message"] == "waking deployment", timeout=0)
