"""Failover, admission, cancellation and bad input, on real processes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.conftest import (
    API_KEY,
    NODE_MODEL,
    Server,
    deployment,
    free_port,
    gateway_env,
    start,
)
from tests.openapi import validate

QUESTION = [{"role": "user", "content": "Say hello."}]
AUTH = {"authorization": f"Bearer {API_KEY}"}
# every question here must reach a node: a response-cache hit would answer it alone
FRESH = {**AUTH, "cache-control": "no-store"}


@pytest.fixture(scope="module")
def pair(log_dir: Path) -> Iterator[tuple[Server, Server, Server]]:
    """A primary node, a fallback node, and a gateway that falls back from one to the other."""
    primary = start("node", {}, log_dir)
    backup = start("node", {}, log_dir)
    env = gateway_env(
        [
            deployment("primary", primary, model="smollm2"),
            deployment("backup", backup, model="smollm2-backup"),
        ],
        ENCLAVE_GATEWAY_FALLBACKS=json.dumps({"smollm2": ["smollm2-backup"]}),
        ENCLAVE_GATEWAY_COOLDOWN_S="60",
    )
    gateway = start("gateway", env, log_dir)
    yield primary, backup, gateway
    for server in (gateway, primary, backup):
        server.stop()


def _ask(gateway: Server, stream: bool = False) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers=FRESH,
        timeout=120,
        json={
            "model": "smollm2",
            "messages": QUESTION,
            "max_tokens": 4,
            "temperature": 0,
            "stream": stream,
        },
    )
    return response, time.perf_counter() - started


def test_failover_to_the_fallback_node_when_the_primary_is_down(
    pair: tuple[Server, Server, Server],
) -> None:
    primary, _backup, gateway = pair
    healthy, healthy_s = _ask(gateway)
    assert healthy.status_code == 200
    assert healthy.headers["x-enclave-deployment"] == "primary"

    primary.stop()
    failed_over, failover_s = _ask(gateway)
    assert failed_over.status_code == 200, failed_over.text
    assert failed_over.headers["x-enclave-deployment"] == "backup"
    assert failed_over.json()["choices"][0]["message"]["content"]

    # the primary is now cooling down in litellm's state: the next request goes straight on
    streamed, streamed_s = _ask(gateway, stream=True)
    assert streamed.status_code == 200
    assert streamed.headers["x-enclave-deployment"] == "backup"
    assert streamed.text.rstrip().endswith("data: [DONE]")

    metrics = httpx.get(f"{gateway.url}/metrics", headers=AUTH).text
    assert 'enclave_gateway_fallbacks_total{from_deployment="primary"' in metrics
    assert 'enclave_gateway_upstream_errors_total{deployment="primary"' in metrics
    print(
        f"\nfailover: healthy {healthy_s * 1000:.0f} ms, first request after the primary died "
        f"{failover_s * 1000:.0f} ms (extra {(failover_s - healthy_s) * 1000:+.0f} ms), "
        f"next (primary in cooldown) {streamed_s * 1000:.0f} ms"
    )


def test_every_deployment_down_is_a_clear_503(log_dir: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    env = gateway_env([deployment("dead", dead)], ENCLAVE_GATEWAY_COLD_WAIT_S="1")
    gateway = start("gateway", env, log_dir)
    try:
        response, waited = _ask(gateway)
    finally:
        gateway.stop()
    assert response.status_code == 503
    validate("ErrorResponse", response.json())
    assert response.json()["error"]["code"] == "deployment_unavailable"
    assert "is down" in response.json()["error"]["message"]
    assert response.headers["retry-after"]
    assert waited < 10


@pytest.fixture(scope="module")
def narrow_node(log_dir: Path) -> Iterator[Server]:
    """A node with one slot and no queue: a second concurrent request is refused at once."""
    server = start("node", {"ENCLAVE_NODE_MAX_QUEUE": "0"}, log_dir)
    yield server
    server.stop()


def _long_stream(node: Server, started: threading.Event, stop: threading.Event) -> None:
    body = {
        "model": NODE_MODEL,
        "messages": [{"role": "user", "content": "Write an essay."}],
        "max_tokens": 400,
        "stream": True,
    }
    with httpx.stream("POST", f"{node.url}/v1/chat/completions", json=body, timeout=120) as r:
        for _ in r.iter_lines():
            started.set()
            if stop.is_set():
                break


def test_full_queue_is_refused_with_503_and_disconnect_cancels(narrow_node: Server) -> None:
    started, stop = threading.Event(), threading.Event()
    worker = threading.Thread(target=_long_stream, args=(narrow_node, started, stop))
    worker.start()
    try:
        assert started.wait(60)
        refused = httpx.post(
            f"{narrow_node.url}/v1/chat/completions",
            timeout=5,
            json={"model": NODE_MODEL, "messages": QUESTION, "max_tokens": 2},
        )
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "queue_full"
    finally:
        stop.set()
        worker.join(60)
    # the client went away mid-stream: the slot is freed long before 400 tokens are done
    gone = time.monotonic()
    deadline = gone + 10
    while time.monotonic() < deadline:
        ok = httpx.post(
            f"{narrow_node.url}/v1/chat/completions",
            timeout=30,
            json={"model": NODE_MODEL, "messages": QUESTION, "max_tokens": 2},
        )
        if ok.status_code == 200:
            break
        time.sleep(0.2)
    assert ok.status_code == 200
    assert time.monotonic() - gone < 5, "the abandoned generation kept the slot"
    assert narrow_node.logged(lambda line: line.get("http.response.status_code") == 499), (
        "the abandoned stream was not recorded as cancelled"
    )


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b"{not json", 400, None),
        (b'{"model": "smollm2"}', 400, "messages"),
        (b'{"model": "smollm2", "messages": []}', 400, "messages"),
        (b'{"model": "smollm2", "messages": "hi"}', 400, "messages"),
        (
            b'{"model": "smollm2", "messages": [{"role": "user", "content": "x"}], '
            b'"temperature": "hot"}',
            400,
            "temperature",
        ),
        (b'{"model": 7, "messages": [{"role": "user", "content": "x"}]}', 400, "model"),
        (b'{"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}', 404, "model"),
        (
            b'{"model": "smollm2", "messages": [{"role": "user", "content": "'
            + b"x" * 70_000
            + b'"}]}',
            413,
            None,
        ),
    ],
)
def test_bad_input_gets_the_right_4xx(
    gateway: Server, body: bytes, status: int, param: str | None
) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        content=body,
        timeout=30,
        headers={**AUTH, "content-type": "application/json"},
    )
    assert response.status_code == status, response.text
    validate("ErrorResponse", response.json())
    if param is not None:
        assert response.json()["error"]["param"].split(".")[0] == param


@pytest.mark.parametrize(
    "headers", [{}, {"authorization": "Bearer wrong"}, {"authorization": API_KEY}]
)
def test_wrong_or_missing_key_is_401(gateway: Server, headers: dict[str, str]) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers=headers,
        timeout=30,
        json={"model": "smollm2", "messages": QUESTION},
    )
    assert response.status_code == 401
    validate("ErrorResponse", response.json())
    with (
        OpenAI(base_url=f"{gateway.url}/v1", api_key="wrong", max_retries=0) as sdk,
        pytest.raises(Exception) as caught,
    ):
        sdk.models.list()
    assert getattr(caught.value, "status_code", None) == 401
