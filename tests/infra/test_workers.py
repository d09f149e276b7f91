"""Gateway workers: several processes on one socket where the state allows it, a clear
refusal where a limit would be counted once per process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from functions.ratelimit.settings import RateLimitSettings
from functions.settings import Settings
from infra import launcher
from infra.cli import main
from tests.conftest import API_KEY, ROOT, Server, child_env, free_port, gateway_env, launch

FILE_STORE = json.dumps({"backend": "file"})
STARTED = "Application startup complete."  # uvicorn, once per worker


def _serve(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", "serve", *args],
        env=child_env(ENCLAVE_DATA_DIR=str(data), ENCLAVE_GATEWAY_PORT=str(free_port()), **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_two_workers_with_the_memory_store_are_refused_with_the_fix(tmp_path: Path) -> None:
    done = _serve(tmp_path, "gateway", "--workers", "2")
    assert done.returncode == 2
    assert "2 gateway workers need a rate-limit store they share" in done.stderr
    assert 'ENCLAVE_GATEWAY_RATE_LIMIT=\'{"backend": "file"}\'' in done.stderr
    assert "Traceback" not in done.stderr


def test_workers_from_the_environment_are_refused_the_same(tmp_path: Path) -> None:
    done = _serve(tmp_path, "gateway", ENCLAVE_GATEWAY_WORKERS="3")
    assert done.returncode == 2
    assert "3 gateway workers need a rate-limit store they share" in done.stderr


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (("gateway", "--workers", "0"), {}, "0 is not between 1 and 64"),
        (("node", "--workers", "2"), {}, "--workers is the gateway's"),
        (
            ("gateway", "--workers", "2"),
            {"ENCLAVE_GATEWAY_RATE_LIMIT": FILE_STORE, "ENCLAVE_AUDIT_INSTANCE_ID": "gw-1"},
            "cannot share the fixed audit instance_id 'gw-1'",
        ),
    ],
)
def test_other_worker_counts_that_cannot_run_are_refused(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], said: str
) -> None:
    done = _serve(tmp_path, *args, **env)
    assert done.returncode == 2
    assert said in done.stderr


def test_up_refuses_workers_asked_for_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCLAVE_GATEWAY_RATE_LIMIT", '{"backend": "memory"}')  # chosen
    assert main(["up", "--workers", "2"]) == 2
    assert "rate-limit store they share" in capsys.readouterr().err
    assert not (tmp_path / ".enclave").exists()  # no key, no log: nothing was started


def test_up_picks_one_worker_per_core_only_with_a_shared_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(launcher.os, "cpu_count", lambda: 16)
    count, why = launcher.gateway_workers(Settings(), None)
    assert count == 1
    assert why is not None and why.startswith("one gateway worker, not 4 (one per core)")
    monkeypatch.setenv("ENCLAVE_GATEWAY_RATE_LIMIT", FILE_STORE)
    assert launcher.gateway_workers(Settings(), None) == (launcher.AUTO_WORKERS_MAX, None)
    monkeypatch.setattr(launcher.os, "cpu_count", lambda: 2)
    assert launcher.gateway_workers(Settings(), None) == (2, None)
    # asked for, by flag or setting: taken as asked (and refused, not lowered, if it cannot run)
    assert launcher.gateway_workers(Settings(), 3) == (3, None)
    monkeypatch.setenv("ENCLAVE_GATEWAY_WORKERS", "1")
    assert launcher.gateway_workers(Settings(), None) == (1, None)


def test_up_shares_the_file_store_unless_the_operator_chose_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One host: ``enclave up`` puts the rate limits where its workers share them, and
    so runs one per core, keeping every limit the operator set."""
    monkeypatch.setattr(launcher.os, "cpu_count", lambda: 2)
    settings, env = launcher.host_limits(Settings())
    assert settings.gateway.rate_limit.backend == "file"
    assert launcher.gateway_workers(settings, None) == (2, None)
    assert json.loads(env["ENCLAVE_GATEWAY_RATE_LIMIT"]) == {"backend": "file"}

    limits = '{"key_limits": {"rpm": 7}, "on_store_error": "fail_open"}'
    monkeypatch.setenv("ENCLAVE_GATEWAY_RATE_LIMIT", limits)
    settings, env = launcher.host_limits(Settings())
    child = RateLimitSettings.model_validate_json(env["ENCLAVE_GATEWAY_RATE_LIMIT"])
    assert child == settings.gateway.rate_limit
    assert (child.backend, child.key_limits.rpm, child.on_store_error) == ("file", 7, "fail_open")

    for chosen in ("memory", "redis"):  # the operator's choice stands
        monkeypatch.setenv("ENCLAVE_GATEWAY_RATE_LIMIT", f'{{"backend": "{chosen}"}}')
        settings, env = launcher.host_limits(Settings())
        assert (settings.gateway.rate_limit.backend, env) == (chosen, {})
    monkeypatch.setenv("ENCLAVE_GATEWAY_RATE_LIMIT", '{"backend": "memory"}')
    count, why = launcher.gateway_workers(Settings(), None)  # memory: one, and why
    assert count == 1 and why is not None


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:  # field 4: the parent's pid
            found.append(int(stat.parent.name))
    return found


def _ask(url: str) -> int:
    """One chat on a connection of its own, so the kernel may hand it to either worker."""
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {API_KEY}", "connection": "close"}
    return httpx.post(
        f"{url}/v1/chat/completions", json=body, headers=headers, timeout=60
    ).status_code


def _pids(gateway: Server, message: str) -> set[int]:
    return {line["process.pid"] for line in gateway.logs() if line["message"] == message}


def test_two_workers_share_the_file_store_and_one_rpm_limit(tmp_path: Path, log_dir: Path) -> None:
    rpm = 3  # a token back every 20 s
    echo_port, port = free_port(), free_port()
    argv = ["tests.e2e.echo_upstream", str(echo_port)]
    record = tmp_path / "requests.jsonl"  # what the echo upstream received
    echo = launch("echo", argv, child_env(ECHO_RECORD=str(record)), log_dir, echo_port)
    deployment = {"name": "echo", "model": "echo", "api_base": f"{echo.url}/v1"}
    env = child_env(
        ENCLAVE_DATA_DIR=str(tmp_path / "data"),
        ENCLAVE_GATEWAY_PORT=str(port),
        ENCLAVE_GATEWAY_RATE_LIMIT=json.dumps({"backend": "file", "key_limits": {"rpm": rpm}}),
        **gateway_env([{**deployment, "upstream_model": "echo"}]),
    )
    argv = ["infra.cli", "serve", "gateway", "--workers", "2"]
    try:
        # two workers import the gateway at once: minutes on a busy 2-core host
        gateway = launch("gateway-workers", argv, env, log_dir, port, timeout=300)
        try:
            assert gateway.logged(lambda _: len(_pids(gateway, STARTED)) == 2, timeout=300)
            workers = _pids(gateway, STARTED)
            assert set(_children(gateway.proc.pid)) >= workers  # the workers, one socket
            started, statuses = time.monotonic(), list[int]()
            with ThreadPoolExecutor(8) as pool:
                # rounds of 8 at once until both workers have answered
                for _ in range(20):
                    statuses += pool.map(_ask, [gateway.url] * 8)
                    if gateway.logged(lambda _: _pids(gateway, "chat") == workers, timeout=1):
                        break
            elapsed = time.monotonic() - started
            assert _pids(gateway, "chat") == workers, "one worker answered all: nothing proven"
        finally:
            gateway.stop()
    finally:
        echo.stop()
    assert set(statuses) == {200, 429}
    # one bucket for the key, in the shared file: rpm answers in all (plus one per 20 s run)
    assert rpm <= statuses.count(200) <= rpm + int(elapsed * rpm / 60)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)  # stopped with the parent


def _two_workers(tmp_path: Path, log_dir: Path, upstream: Server, model: str) -> Server:
    deployment = {"name": model, "model": model, "api_base": f"{upstream.url}/v1"}
    port = free_port()
    env = child_env(
        ENCLAVE_DATA_DIR=str(tmp_path / "data"),
        ENCLAVE_GATEWAY_PORT=str(port),
        ENCLAVE_GATEWAY_RATE_LIMIT=FILE_STORE,
        **gateway_env([{**deployment, "upstream_model": model}]),
    )
    argv = ["infra.cli", "serve", "gateway", "--workers", "2"]
    gateway = launch("gateway-workers", argv, env, log_dir, port, timeout=300)
    assert gateway.logged(lambda _: len(_pids(gateway, STARTED)) == 2, timeout=300)
    return gateway


def _running(pid: int) -> bool:
    """Alive: not gone, and not a zombie waiting to be reaped by whoever adopted it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_a_stopping_supervisor_refuses_new_callers_and_drains_the_answer_in_flight(
    tmp_path: Path, log_dir: Path
) -> None:
    """uvicorn's supervisor kept the socket listening until the last worker had drained:
    new callers waited in the kernel's queue for up to the drain time, unanswered."""
    port = free_port()
    gated = launch("gated", ["tests.infra.gated_upstream", str(port)], child_env(), log_dir, port)
    try:
        gateway = _two_workers(tmp_path, log_dir, gated, "slow")
        try:
            body = {
                "model": "slow",
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            }
            headers = {"authorization": f"Bearer {API_KEY}"}
            url = f"{gateway.url}/v1/chat/completions"
            with (
                httpx.Client(timeout=120) as client,
                client.stream("POST", url, json=body, headers=headers) as answer,
            ):
                lines = answer.iter_lines()
                head = next(line for line in lines if '"content"' in line)
                gateway.proc.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + 30
                while _listening(gateway.port) and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert not _listening(gateway.port)  # refused at once, the answer in flight
                httpx.post(f"{gated.url}/open")  # only now its second half
                rest = [line for line in lines if line]
            assert gateway.proc.wait(timeout=120) == 0
        finally:
            gateway.stop()
    finally:
        gated.stop()
    assert rest[-1] == "data: [DONE]" and all('"error"' not in line for line in rest)
    text = "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        for line in [head, *rest[:-1]]
    )
    assert text == "The first half, and the second half after the gate."


def test_workers_stop_when_their_supervisor_is_killed(tmp_path: Path, log_dir: Path) -> None:
    """SIGKILL leaves a supervisor no time to stop its workers: they would go on serving
    the port, orphaned, after `enclave up` said it had stopped."""
    port = free_port()
    echo = launch(
        "echo",
        ["tests.e2e.echo_upstream", str(port)],
        child_env(ECHO_RECORD=str(tmp_path / "r")),
        log_dir,
        port,
    )
    try:
        gateway = _two_workers(tmp_path, log_dir, echo, "echo")
        workers = _pids(gateway, STARTED)
        try:
            gateway.proc.kill()
            gateway.proc.wait()
            deadline = time.monotonic() + 60
            while any(_running(pid) for pid in workers):
                assert time.monotonic() < deadline, "a worker outlived its supervisor"
                time.sleep(0.1)
            assert not _listening(gateway.port)
        finally:
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    finally:
        echo.stop()
