"""SIGKILL under load: every answer anyone received has its audit record on disk.

The process under test is :mod:`tests.functions.audit.crash_app`, which answers
exactly as the gateway will (``await request_durable(...)``, then the answer).
Eight threads send requests; the process is killed mid-load; every request that
got a complete 200 must have its record (matched by ``x-request-id`` against the
record's ``trace_id``), and ``enclave audit verify`` must pass on what is left.
The gateway-level twin is ``test_crash_gateway.py``. The same harness against the
fire-and-forget ``record()`` lost 54 of 302 and 25 of 313 answered records when run
by hand; that negative control is not a test, as whether a given kill lands while
records are queued is a matter of timing.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from functions.audit.store import list_logs
from tests.conftest import Server, child_env, enclave_cli, free_port, launch

THREADS = 8
KILL_AFTER = 300  # answers received before the kill
DEADLINE_S = 20.0


def answered_then_killed(
    server: Server,
    *,
    headers: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> set[str]:
    """The trace ids of complete 200 answers, from 8 threads, until SIGKILL mid-load."""
    answered: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
            while not stop.is_set():
                try:
                    response = http.post("/v1/chat/completions", json=body or {"model": "m"})
                    response.read()
                except httpx.HTTPError:
                    return  # the server is gone
                if response.status_code == 200 and response.json()["choices"]:
                    with lock:
                        answered.add(response.headers["x-request-id"])

    threads = [threading.Thread(target=client) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + DEADLINE_S
    while len(answered) < KILL_AFTER and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(server.proc.pid, signal.SIGKILL)  # mid-load: every thread has a request open
    server.proc.wait()
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    with lock:
        return set(answered)


def recorded(data: Path) -> set[str]:
    ids: set[str] = set()
    for days in list_logs(data / "audit").values():
        for _, path in days:
            for line in path.read_bytes().splitlines():
                with suppress(orjson.JSONDecodeError):  # a torn last line: a write in flight
                    ids.add(str(orjson.loads(line).get("trace_id")))
    return ids


@pytest.fixture
def crash_app(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    data, port = tmp_path / "data", free_port()
    argv = ["tests.functions.audit.crash_app", str(port), str(data), "durable"]
    server = launch("crash-app", argv, child_env(), tmp_path, port, timeout=60)
    yield server, data
    server.stop()


def test_sigkill_under_load_loses_no_answered_record(crash_app: tuple[Server, Path]) -> None:
    server, data = crash_app
    answered = answered_then_killed(server)
    assert len(answered) >= KILL_AFTER, "the load never got going"
    missing = answered - recorded(data)
    assert not missing, f"{len(missing)} of {len(answered)} answered requests have no record"
    checked = enclave_cli(data, "audit", "verify")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "audit verify: OK" in checked.stdout
