"""The node's supervision: back-off, forgiveness, giving up; ports and exit reasons named."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from infra.services import PortTakenError, Service, bind, exit_reason, readable
from infra.supervise import Backoff, GiveUpError, NodeSupervisor
from tests.conftest import free_port


def test_backoff_doubles_up_to_its_cap_then_gives_up() -> None:
    backoff = Backoff(first_s=1, cap_s=5, max_failures=5)
    assert [backoff.next_delay(0) for _ in range(6)] == [1, 2, 4, 5, 5, None]


def test_a_node_healthy_for_a_while_is_forgiven_its_failures() -> None:
    backoff = Backoff(first_s=1, stable_s=60, max_failures=2)
    assert backoff.next_delay(0) == 1 and backoff.next_delay(59) == 2
    assert backoff.next_delay(60) == 1  # stayed up a minute: a fresh start
    assert backoff.next_delay(0) == 2 and backoff.next_delay(0) is None


def test_exit_reasons_name_the_signal_or_the_status() -> None:
    assert exit_reason(-9) == "killed by SIGKILL"
    assert exit_reason(1) == "exited with status 1"
    assert exit_reason(-200) == "killed by signal 200"


def test_log_lines_are_made_readable() -> None:
    line = '{"log.level": "error", "message": "engine failed", "error.message": "out of memory"}'
    assert readable(line) == "error engine failed (out of memory)"
    assert readable("Segmentation fault (core dumped)") == "Segmentation fault (core dumped)"
    assert readable('["not", "a record"]') == '["not", "a record"]'


def test_a_taken_port_names_the_service_and_the_way_out() -> None:
    port = free_port()
    with socket.create_server(("127.0.0.1", port)), pytest.raises(PortTakenError) as taken:
        bind("node", "127.0.0.1", port, "--node-port")
    assert str(taken.value).startswith(f"port {port} on 127.0.0.1 (node) is already in use")
    assert str(taken.value).endswith("choose another port with --node-port")
    bind("node", "127.0.0.1", port, "--node-port").close()  # free again once the other left


def test_a_node_that_cannot_start_again_is_given_up_on(tmp_path: Path) -> None:
    """A dead node whose port another program took: restarts fail at once, then give up."""
    port = free_port()
    node = Service("node", "127.0.0.1", port, tmp_path / "node.log", 1.0, "--node-port")
    said: list[str] = []
    supervisor = NodeSupervisor(node, {}, Backoff(first_s=0, max_failures=1), said.append, 60)
    supervisor.restart_at = 0.0  # it died; its restart is due
    with socket.create_server(("127.0.0.1", port)):
        supervisor.check(now=1.0)  # the first restart fails: one more try
        assert said[-1] == "restarting the node in 0 s (the gateway answers 503 for it meanwhile)"
        with pytest.raises(GiveUpError) as given_up:
            supervisor.check(now=2.0)
    assert str(given_up.value).startswith("node failed 2 times in a row; giving up (last: could")
    assert f"port {port}" in said[0] and node.proc is None  # nothing was ever started
