"""Local emulation: the node and the gateway as two processes on 127.0.0.1.

``enclave up`` starts the node, then the gateway, waits until both answer
``/health``, sends one real chat through the gateway to prove the path, prints
how to call it, and stops both cleanly on Ctrl-C or SIGTERM. Each service's log
lines go to the terminal as before and to ``<data_dir>/logs/<service>.log``
(appended across runs; the files Filebeat reads, see infra/monitoring/README.md).

Two secrets are generated once and kept under the data directory (mode 0600):
the gateway's bootstrap key (``api_key``) and the node's key (``node_key``),
which the node requires and the gateway's deployment of it sends.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import IO, Any

import httpx

from functions.settings import Settings

READY_TIMEOUT_S = 180.0


def _kept_secret(path: Path, prefix: str) -> str:
    """A secret generated once into ``path`` (mode 0600) and read back ever after."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(prefix + secrets.token_urlsafe(24))
    return path.read_text().strip()


def api_key(settings: Settings) -> str:
    """The configured key, or one generated once and kept under the data directory."""
    if settings.gateway.api_keys:
        return settings.gateway.api_keys[0].get_secret_value()
    return _kept_secret(settings.data_dir / "api_key", "sk-enclave-")


def node_key(settings: Settings) -> str:
    """The node's key: configured, or generated once into ``<data_dir>/node_key``.

    The node always runs keyed, so moving it off loopback never opens it by accident.
    """
    if settings.node.api_key is not None and settings.node.api_key.get_secret_value():
        return settings.node.api_key.get_secret_value()
    return _kept_secret(settings.data_dir / "node_key", "sk-node-")


def keyed_deployments(settings: Settings, key: str) -> list[dict[str, Any]]:
    """The gateway's deployments, with the node key added to those that call our node."""
    ours = f"http://{settings.node.host}:{settings.node.port}/v1"
    listed = []
    for deployment in settings.gateway.deployments:
        fields = deployment.model_dump(mode="json", exclude={"api_key"}, exclude_unset=True)
        if deployment.api_key is not None:
            fields["api_key"] = deployment.api_key.get_secret_value()
        elif deployment.api_base.rstrip("/") == ours:
            fields["api_key"] = key
        listed.append(fields)
    return listed


def tee(source: IO[bytes], path: Path, terminal: IO[bytes]) -> None:
    """Copy ``source`` line by line to the file at ``path`` and to ``terminal`` until it ends."""
    with source, path.open("ab") as log:
        for line in iter(source.readline, b""):
            log.write(line)
            log.flush()
            with contextlib.suppress(OSError, ValueError):  # a closed terminal: the file goes on
                terminal.write(line)
                terminal.flush()


def spawn(
    service: str, env: dict[str, str], log_dir: Path
) -> tuple[subprocess.Popen[bytes], threading.Thread]:
    """``enclave serve SERVICE``, and the thread teeing its log (stderr) to ``log_dir``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "serve", service],
        env=env,
        cwd=Path.cwd(),
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    copy = threading.Thread(
        target=tee,
        args=(proc.stderr, log_dir / f"{service}.log", sys.stderr.buffer),
        name=f"{service}-log",
        daemon=True,  # a grandchild holding the pipe open must not keep the launcher alive
    )
    copy.start()
    return proc, copy


def wait_ready(name: str, proc: subprocess.Popen[bytes], url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with status {proc.returncode} before it was ready")
        try:
            response = httpx.get(url, timeout=1.0)
            if response.status_code == 200:
                return
            if response.json().get("status") == "failed":
                raise SystemExit(f"{name} failed: {response.json().get('detail')}")
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{name} was not ready within {timeout:.0f} s ({url})")


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def first_chat(base: str, key: str, model: str) -> str:
    response = httpx.post(
        f"{base}/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={
            "model": model,
            "max_tokens": 48,
            "temperature": 0,
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
        },
        timeout=120,
    )
    response.raise_for_status()
    return str(response.json()["choices"][0]["message"]["content"])


def up(settings: Settings, check_only: bool = False) -> int:
    key = api_key(settings)
    node_secret = node_key(settings)
    env = {
        **os.environ,
        "ENCLAVE_GATEWAY_API_KEYS": json.dumps([key]),
        "ENCLAVE_NODE_API_KEY": node_secret,
        "ENCLAVE_DATA_DIR": str(settings.data_dir),
    }
    env["ENCLAVE_GATEWAY_DEPLOYMENTS"] = json.dumps(keyed_deployments(settings, node_secret))
    procs: list[subprocess.Popen[bytes]] = []
    copies: list[threading.Thread] = []
    logs = settings.data_dir / "logs"

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        node, copy = spawn("node", env, logs)
        procs.append(node)
        copies.append(copy)
        node_url = f"http://{settings.node.host}:{settings.node.port}"
        wait_ready("node", node, f"{node_url}/health", READY_TIMEOUT_S)
        gateway, copy = spawn("gateway", env, logs)
        procs.append(gateway)
        copies.append(copy)
        base = f"http://{settings.gateway.host}:{settings.gateway.port}"
        wait_ready("gateway", gateway, f"{base}/health", READY_TIMEOUT_S)
        model = settings.gateway.deployments[0].model
        answer = first_chat(f"{base}/v1", key, model)
        print(banner(base, key, model, answer), flush=True)
        if check_only:
            return 0
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop(procs)
        for copy in copies:  # the last lines, once the pipes close
            copy.join(timeout=2)


def banner(base: str, key: str, model: str, answer: str) -> str:
    return f"""
Enclave is up.
  base URL   {base}/v1
  API key    {key}
  model      {model}
  first chat "What is the capital of France?" -> {answer.strip()!r}

Try it:
  curl {base}/v1/chat/completions \\
    -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello!"}}]}}'

Ctrl-C stops both processes.
"""
