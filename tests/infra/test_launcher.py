"""`enclave up` as a user runs it: ports checked first, a first chat, a quiet terminal,
the node supervised, and a stop that drains the answers in flight."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from functions.settings import Deployment, GatewaySettings, NodeSettings, Settings
from infra import launcher
from infra.cli import main
from infra.launcher import keyed_deployments, node_key
from tests.conftest import NODE_MODEL, ROOT, free_port, launch

SERVICES = ("gateway", "node")


def _env(tmp_path: Path, **extra: str) -> tuple[dict[str, str], int, int]:
    gateway_port, node_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")},
        "HF_HUB_OFFLINE": "1",
        "ENCLAVE_GATEWAY_PORT": str(gateway_port),
        "ENCLAVE_NODE_PORT": str(node_port),
        "ENCLAVE_DATA_DIR": str(tmp_path / "data"),
        **extra,
    }
    return env, gateway_port, node_port


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


@dataclass
class Up:
    """A running ``enclave up``, its terminal (stdout and stderr) read line by line."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def wait_for(self, pattern: str, after: int = 0, timeout: float = 300) -> re.Match[str]:
        """The first terminal line from index ``after`` on matching ``pattern``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[after:]:
                if found := re.search(pattern, line):
                    return found
            if self.proc.poll() is not None and not self._reading.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines))

    def pid_of(self, service: str, after: int = 0) -> int:
        return int(self.wait_for(rf"{service} (?:ready|is up again).*\(pid (\d+)\)", after)[1])

    def start_reading(self) -> None:
        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))

        self._reading = threading.Thread(target=read, daemon=True)
        self._reading.start()


@contextlib.contextmanager
def enclave_up(env: dict[str, str], *flags: str) -> Iterator[Up]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "up", *flags],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )
    up = Up(proc)
    up.start_reading()
    try:
        yield up
    finally:
        if proc.poll() is None:  # a failed test: the launcher, and its children (own session)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            for pid in re.findall(r"\(pid (\d+)\)", "\n".join(up.lines)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        up._reading.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def _use(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[int, int]:
    """``enclave up`` in this process: a data directory and two free ports of its own."""
    gateway_port, node_port = free_port(), free_port()
    monkeypatch.setenv("ENCLAVE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ENCLAVE_GATEWAY_PORT", str(gateway_port))
    monkeypatch.setenv("ENCLAVE_NODE_PORT", str(node_port))
    return gateway_port, node_port


def test_up_answers_a_first_chat_and_prints_how_to_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    gateway_port, node_port = _use(monkeypatch, tmp_path)
    assert main(["up", "--check"]) == 0
    out, err = capfd.readouterr()  # what reached the terminal, children included
    data = tmp_path / "data"
    key_file = data / "api_key"
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    node_secret = data / "node_key"  # the node always runs keyed
    assert stat.S_IMODE(node_secret.stat().st_mode) == 0o600
    secret = node_secret.read_text().strip()
    assert len(secret) > 24 and secret not in out + err
    assert f"http://127.0.0.1:{gateway_port}/v1" in out
    assert key in out and f"Authorization: Bearer {key}" in out and str(key_file) in out
    assert "curl " in out and 'enclave chat "' in out
    assert str(data / "logs" / "gateway.log") in out
    answer = out.split("->", 1)[1].splitlines()[0].strip().strip("'\"")
    assert answer and not answer.startswith("(failed"), "the first chat came back empty"
    assert not _listening(gateway_port) and not _listening(node_port)
    logs = {name: _json_lines(data / "logs" / f"{name}.log") for name in SERVICES}
    assert {line["service.name"] for line in logs["gateway"]} == {"enclave-gateway"}
    assert {line["service.name"] for line in logs["node"]} == {"enclave-node"}
    assert any(line["message"] == "chat" for line in logs["gateway"])  # the first chat
    assert any(line["message"] == "engine ready" for line in logs["node"])
    # the terminal is for people: the banner and lifecycle lines, no JSON log lines
    assert not [line for line in out.splitlines() if line.lstrip().startswith("{")]
    assert err == ""
    assert out.rstrip().endswith("stopped")


@pytest.mark.parametrize("taken", ["gateway", "node"])
def test_a_taken_port_is_named_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], taken: str
) -> None:
    gateway_port, node_port = _use(monkeypatch, tmp_path)
    port = gateway_port if taken == "gateway" else node_port
    other = node_port if taken == "gateway" else gateway_port
    with socket.create_server(("127.0.0.1", port)):  # another server, holding the port
        assert main(["up", "--check"]) == 2
    out, err = capfd.readouterr()
    assert out == ""
    [line] = err.splitlines()  # one line: which port, whose, and how to move it
    assert f"port {port} on 127.0.0.1 ({taken}) is already in use" in line
    assert ("--port" if taken == "gateway" else "--node-port") in line
    assert not _listening(other)  # nothing was started
    assert not (tmp_path / "data").exists()  # nor was anything written


def test_port_flags_move_both_services_and_verbose_shows_their_logs(tmp_path: Path) -> None:
    env, taken, _ = _env(tmp_path)
    port, node_port = free_port(), free_port()
    moved = ("--port", str(port), "--node-port", str(node_port), "--verbose")
    with socket.create_server(("127.0.0.1", taken)), enclave_up(env, *moved) as up:
        up.wait_for("Ctrl-C stops both processes")
        up.wait_for(r'^\{.*"message":"engine ready"')  # --verbose: the logs follow, as JSON
        key = (tmp_path / "data" / "api_key").read_text().strip()
        models = httpx.get(
            f"http://127.0.0.1:{port}/v1/models", headers={"authorization": f"Bearer {key}"}
        )
        assert models.status_code == 200
        node = f"http://127.0.0.1:{node_port}/v1/models"
        assert httpx.get(node).status_code == 401  # the node takes only its key...
        node_secret = (tmp_path / "data" / "node_key").read_text().strip()
        keyed = httpx.get(node, headers={"authorization": f"Bearer {node_secret}"})
        assert keyed.status_code == 200
        up.proc.send_signal(signal.SIGTERM)
        assert up.proc.wait(timeout=60) == 0
    assert not _listening(port) and not _listening(node_port)


def test_ctrl_c_drains_the_answers_in_flight(tmp_path: Path) -> None:
    upstream_port = free_port()
    argv = ["tests.infra.gated_upstream", str(upstream_port)]
    upstream = launch("gated", argv, dict(os.environ), tmp_path, upstream_port)
    env, gateway_port, node_port = _env(tmp_path)
    deployments = [
        {"name": "local-cpu", "model": "smollm2", "api_base": f"http://127.0.0.1:{node_port}/v1"}
        | {"upstream_model": NODE_MODEL},
        {"name": "gated", "model": "slow", "api_base": f"{upstream.url}/v1"},
    ]
    env["ENCLAVE_GATEWAY_DEPLOYMENTS"] = json.dumps(deployments)
    try:
        with enclave_up(env) as up:
            up.wait_for("Ctrl-C stops both processes")
            pids = [up.pid_of(service) for service in SERVICES]
            key = (tmp_path / "data" / "api_key").read_text().strip()
            headers = {"authorization": f"Bearer {key}"}
            url = f"http://127.0.0.1:{gateway_port}/v1/chat/completions"
            with (
                httpx.Client(timeout=120) as client,
                client.stream("POST", url, headers=headers, json=_asked("slow")) as slow,
                client.stream("POST", url, headers=headers, json=_asked("smollm2")) as real,
            ):
                slow_lines, real_lines = slow.iter_lines(), real.iter_lines()
                # both answers are in flight; the first half is released before the gate
                # opens (the output guard holds back only a live tail, not a fixed window)
                slow_head = _until(slow_lines, '"content"')
                _until(real_lines, '"content"')
                seen = len(up.lines)
                os.killpg(up.proc.pid, signal.SIGINT)  # Ctrl-C: the terminal's process group
                up.wait_for("draining", after=seen)
                while _listening(gateway_port):  # the gateway is shutting down: no new callers
                    time.sleep(0.05)
                time.sleep(6)  # held past uvicorn's graceful timeout `enclave up` used to set (5 s)
                httpx.post(f"{upstream.url}/open")  # only now comes the slow answer's second half
                slow_rest, real_rest = list(slow_lines), list(real_lines)
            assert up.proc.wait(timeout=120) == 0
            up.wait_for("stopped", after=seen)
    finally:
        upstream.stop()
    slow_text = "".join(_content(line) for line in [slow_head, *slow_rest])
    assert slow_text == "The first half, and the second half after the gate."
    assert [line for line in slow_rest if line][-1] == "data: [DONE]"
    assert [line for line in real_rest if line][-1] == "data: [DONE]"
    assert all('"error"' not in line for line in slow_rest + real_rest)
    assert not any(_alive(pid) for pid in pids)
    assert not _listening(gateway_port) and not _listening(node_port)
    records = [
        json.loads(line)
        for path in (tmp_path / "data" / "audit").rglob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    answered = {(r["model"], r["status"]) for r in records if r["kind"] == "request"}
    assert {("slow", 200), ("smollm2", 200)} <= answered  # first chat + the two in flight
    assert not [r for r in records if r.get("status") == 499]


def _asked(model: str) -> dict[str, Any]:
    question = [{"role": "user", "content": "Tell me about the sea."}]
    return {"model": model, "messages": question, "stream": True, "max_tokens": 48}


def _content(line: str) -> str:
    if not line.startswith("data: {"):
        return ""
    choices = json.loads(line[6:])["choices"]
    return "".join(choice["delta"].get("content") or "" for choice in choices)


def _until(lines: Iterator[str], text: str) -> str:
    return next(line for line in lines if text in line)


def test_a_dead_node_is_reported_and_restarted_and_a_dead_gateway_stops_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway_port, node_port = _use(monkeypatch, tmp_path)
    said: list[str] = []
    monkeypatch.setattr(launcher, "say", said.append)
    failures: list[BaseException] = []

    def said_line(pattern: str, after: int = 0) -> re.Match[str]:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for line in said[after:]:
                if found := re.search(pattern, line):
                    return found
            time.sleep(0.05)
        raise AssertionError(f"nothing said matches {pattern!r}: {said}")

    def user() -> None:
        """Kills the node, waits for it to come back, asks a chat, then kills the gateway."""
        try:
            node_pid = int(said_line(r"node ready .*\(pid (\d+)\)")[1])
            gateway_pid = int(said_line(r"gateway ready .*\(pid (\d+)\)")[1])
            gateway_log = tmp_path / "data" / "logs" / "gateway.log"
            while not any(line.get("message") == "chat" for line in _json_lines(gateway_log)):
                time.sleep(0.1)  # the first chat is through
            seen = len(said)
            os.kill(node_pid, signal.SIGKILL)
            said_line(r"^node died: killed by SIGKILL", seen)
            said_line(r"^restarting the node in 1 s", seen)
            restarted.append(int(said_line(r"node is up again \(pid (\d+)\)", seen)[1]))
            assert restarted[0] != node_pid and _alive(gateway_pid)  # the gateway went on
            key = (tmp_path / "data" / "api_key").read_text().strip()
            answer = httpx.post(
                f"http://127.0.0.1:{gateway_port}/v1/chat/completions",
                headers={"authorization": f"Bearer {key}"},
                json={"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}]},
                timeout=120,
            )
            assert answer.status_code == 200  # through the restarted node
            os.kill(gateway_pid, signal.SIGKILL)
        except BaseException as exc:
            failures.append(exc)
            os.kill(os.getpid(), signal.SIGTERM)  # stops the launcher below

    restarted: list[int] = []
    thread = threading.Thread(target=user)
    thread.start()
    code = main(["up"])
    thread.join()
    assert not failures, failures
    assert code == 1
    said_line(r"^gateway died: killed by SIGKILL; stopping the node")
    assert said[-1] == "stopped" and not _alive(restarted[0])
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
