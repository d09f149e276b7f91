"""PENDING (not collected: rename to ``test_crash_gateway.py`` once wired).

The real gateway, SIGKILLed under load: every chat answered with a complete 200
has its audit record on disk, and ``enclave audit verify`` passes on what is
left. It fails until the lifecycle owner awaits
``RequestAudit.request_durable(...)`` before the last byte of a chat answer
leaves (today ``Lifecycle`` calls the fire-and-forget ``request()`` after it);
:mod:`tests.functions.audit.test_crash` proves the same against a stand-in app.

The upstream is :mod:`tests.security.recording_upstream`, a test double of a
model server. Matching is by the ``x-request-id`` response header against each
record's ``trace_id``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import API_KEY, Server, enclave_cli, free_port, gateway_env, start
from tests.functions.audit.test_crash import KILL_AFTER, answered_then_killed, recorded
from tests.security.conftest import Recorder, rec, start_recorder


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Recorder]:
    recorder = start_recorder("upstream", tmp_path)
    yield recorder
    recorder.server.stop()


@pytest.fixture
def gateway(upstream: Recorder, tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    port = free_port()
    env = gateway_env([rec("relay", "m", upstream.url)], ENCLAVE_GATEWAY_COLD_WAIT_S="0")
    server = start("gateway", env, tmp_path, port=port)
    yield server, tmp_path / f"data-gateway-{port}"  # where start() puts its data
    server.stop()


def test_sigkill_under_load_loses_no_answered_chat(gateway: tuple[Server, Path]) -> None:
    server, data = gateway
    answered = answered_then_killed(
        server, headers={"authorization": f"Bearer {API_KEY}"}, body=BODY
    )
    assert len(answered) >= KILL_AFTER, "the load never got going"
    missing = answered - recorded(data)
    assert not missing, f"{len(missing)} of {len(answered)} answered chats have no record"
    checked = enclave_cli(data, "audit", "verify")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "audit verify: OK" in checked.stdout


BODY = {"model": "m", "messages": [{"role": "user", "content": "Say ok."}], "max_tokens": 4}
