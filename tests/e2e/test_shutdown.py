"""A gateway stopped while an answer is still streaming, past its drain time.

uvicorn cancels what is still running when its graceful shutdown times out. The
client was still there, so that is not a 499 ("the client closed the request"):
the request keeps its audit record, as a 503 saying the gateway shut down, written
before the audit log closes (invariant I5: every request leaves one durable record).
The upstream is the gated test double of tests/infra/gated_upstream.py: it streams
its first words, then holds the rest until told, so the answer is provably in flight.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import API_KEY, child_env, free_port, gateway_env, launch


def test_an_answer_cut_off_by_shutdown_keeps_its_record_as_a_503(tmp_path: Path) -> None:
    upstream_port, gateway_port = free_port(), free_port()
    upstream = launch(
        "gated",
        ["tests.infra.gated_upstream", str(upstream_port)],
        child_env(),
        tmp_path,
        upstream_port,
    )
    deployments = [{"name": "gated", "model": "slow", "api_base": f"{upstream.url}/v1"}]
    data = tmp_path / "data"
    env = {
        **child_env(ENCLAVE_DATA_DIR=str(data)),
        "ENCLAVE_GATEWAY_PORT": str(gateway_port),
        **gateway_env(deployments),
    }
    argv = ["infra.cli", "serve", "gateway", "--drain-s", "1"]
    gateway = launch("gateway", argv, env, tmp_path, gateway_port)
    body = {"model": "slow", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    headers = {"authorization": f"Bearer {API_KEY}"}
    try:
        with (
            httpx.Client(timeout=60) as client,
            client.stream(
                "POST", f"{gateway.url}/v1/chat/completions", json=body, headers=headers
            ) as answer,
        ):
            lines = answer.iter_lines()
            assert next(line for line in lines if line.startswith("data: "))  # in flight
            request_id = answer.headers["x-request-id"]
            gateway.proc.send_signal(signal.SIGTERM)
            # drained 1 s, then cut off, then closed (uvicorn re-raises the SIGTERM it caught)
            assert gateway.proc.wait(timeout=60) in (0, -signal.SIGTERM)
            with pytest.raises(httpx.RemoteProtocolError):  # the client sees the answer cut
                list(lines)
    finally:
        gateway.stop()
        upstream.stop()
    records = [
        json.loads(line)
        for path in (data / "audit").rglob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    mine = [r for r in records if r.get("trace_id") == request_id]
    assert [r["status"] for r in mine] == [503], mine
    assert not [r for r in records if r.get("status") == 499]
    logged = [entry for entry in gateway.logs() if entry.get("message") == "chat"]
    assert logged, "the cut-off request is logged"
