"""I9 and I4 at the edge: bad input is the client's 4xx, bounded, and never the deployment's.

From the trust-boundary issue: an unknown field nested 254 levels deep came back as
``503 "The model server failed."`` with ``Retry-After`` (which SDKs retry) and counted
as a deployment failure; ``"max_tokens": "100"`` was coerced; a 1 MB model name was
echoed back; a body that never finished arriving held a connection for ever.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, gateway_env, start
from tests.openapi import validate
from tests.security.conftest import AUTH, Recorder, rec

USER = {"role": "user", "content": "ECHO hi"}


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"deeper": value}
    return value


def post(gateway: Server, body: Any) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=AUTH, timeout=30)


@pytest.mark.parametrize(
    "fields",
    [
        {"max_tokens": "100"},
        {"max_tokens": True},
        {"max_tokens": 1.5},
        {"stream": "yes"},
        {"stream": 1},
        {"temperature": "0.5"},
        {"n": 17},
        {"n": "2"},
        {"seed": "7"},
        {"stop": ["a", "b", "c", "d", "e"]},
        {"stop": "x" * 257},
        {"stop": ""},
        {"messages": [USER] * 2049},
        {"messages": [{"role": "user", "content": 5}]},
        {"messages": [{"role": "user", "content": [{"type": "video", "video": "x"}]}]},
        {"tools": [{"type": "function", "function": {"name": "f"}}] * 129},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": nested(254)}}]},
        {"response_format": {"type": "yaml"}},
        {"metadata": {f"k{i}": "v" for i in range(17)}},
        {"logit_bias": {"1": 101}},
        {"user": 7},
        {"model": "m" * 1_000_000},
    ],
    ids=lambda fields: next(iter(fields)),
)
def test_malformed_requests_are_400_and_name_no_input(
    fields: dict[str, Any], rec_gateway: Server, rec_upstream: Recorder
) -> None:
    rec_upstream.clear()
    answer = post(rec_gateway, {"model": "relay-spare", "messages": [USER], **fields})
    assert answer.status_code == 400, answer.text[:300]
    validate("ErrorResponse", answer.json())
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert len(answer.content) < 1_000  # no input echoed back
    assert "retry-after" not in answer.headers
    assert rec_upstream.requests() == []


def test_deep_unknown_fields_are_dropped_and_the_deployment_stays_healthy(
    rec_gateway: Server, rec_upstream: Recorder
) -> None:
    rec_upstream.clear()
    deep = {"model": "relay", "messages": [{**USER, "extra": nested(254)}], "x": nested(254)}
    assert post(rec_gateway, deep).status_code == 200
    assert "deeper" not in rec_upstream.requests()[0]["body"]
    bad = {"model": "relay", "messages": [USER], "tools": "not a list"}
    assert post(rec_gateway, bad).status_code == 400
    again = post(rec_gateway, {"model": "relay", "messages": [USER]})
    assert again.headers["x-enclave-deployment"] == "relay"  # not cooled down


def _whole_reply(conn: socket.socket) -> str:
    """Headers and body of one HTTP response: they may arrive in separate segments."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
        piece = conn.recv(4096)
        if not piece:
            break
        data += piece
    return data.decode()


def _length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_a_body_that_never_finishes_is_cut_off(log_dir: Path, rec_upstream: Recorder) -> None:
    """A client announcing more than it sends is answered 408 after the read timeout."""
    env = gateway_env([rec("relay", "relay", rec_upstream.url)], ENCLAVE_GATEWAY_BODY_TIMEOUT_S="1")
    gateway = start("gateway", env, log_dir)
    try:
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=20) as conn:
            head = (
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: {AUTH['authorization']}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            )
            conn.sendall(head.encode() + b'{"model": "relay", "mess')
            reply = _whole_reply(conn)
        assert reply.startswith("HTTP/1.1 408"), reply[:200]
        assert "request_timeout" in reply
    finally:
        gateway.stop()
