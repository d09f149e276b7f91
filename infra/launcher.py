"""Local emulation: the node and the gateway as two processes on 127.0.0.1.

``enclave up`` binds both ports first (a taken one is named, with the flag that
moves it), starts the node, then the gateway, each on the socket it bound
(infra/services.py), sends one real chat through the gateway, and prints a short
banner. Then it supervises: a node that dies is reported (how it ended, its last
log lines) and restarted with back-off while the gateway goes on
(infra/supervise.py); a gateway that dies stops the stack, because the gateway
holds the audit chain and the keys, and a crash there is a fault to look at, not
one to paper over with a restart loop behind a URL that flaps.

Ctrl-C or SIGTERM drains: the gateway gets SIGTERM first and finishes the
requests in flight (their answers and audit records complete), then the node
stops. A second Ctrl-C stops both at once. The services' JSON logs go to
``<data_dir>/logs/<service>.log`` (the files Filebeat reads, see
infra/monitoring/README.md); the terminal gets one readable line per event
(``--verbose`` also follows the log files).

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
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from functions.settings import Settings
from infra.cli_chat import ChatError, ask
from infra.serve import workers_refusal
from infra.services import DRAIN_S, NotReadyError, PortTakenError, Service, bind, exit_reason
from infra.supervise import Backoff, GiveUpError, NodeSupervisor

READY_TIMEOUT_S = 180.0
QUESTION = "What is the capital of France?"
PORT_FLAG = "`enclave up --port N` (or ENCLAVE_GATEWAY_PORT)"
NODE_PORT_FLAG = "`enclave up --node-port N` (or ENCLAVE_NODE_PORT)"
AUTO_WORKERS_MAX = 4  # gateway processes `enclave up` picks at most: the node needs cores too


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


def with_ports(port: int | None, node_port: int | None) -> Settings:
    """Settings from the environment, ``--port``/``--node-port`` over them.

    The default deployment (our node) follows the node's port.
    """
    overrides: dict[str, Any] = {}  # merged into the environment's nested values
    if port is not None:
        overrides["gateway"] = {"port": port}
    if node_port is not None:
        overrides["node"] = {"port": node_port}
    return Settings(**overrides)


def child_env(settings: Settings, key: str, node_secret: str) -> dict[str, str]:
    """What both children run with: this environment, the keys, the ports, the deployments."""
    return {
        **os.environ,
        "ENCLAVE_GATEWAY_API_KEYS": json.dumps([key]),
        "ENCLAVE_NODE_API_KEY": node_secret,
        "ENCLAVE_DATA_DIR": str(settings.data_dir),
        "ENCLAVE_GATEWAY_PORT": str(settings.gateway.port),
        "ENCLAVE_NODE_PORT": str(settings.node.port),
        "ENCLAVE_GATEWAY_DEPLOYMENTS": json.dumps(keyed_deployments(settings, node_secret)),
    }


def host_limits(settings: Settings) -> tuple[Settings, dict[str, str]]:
    """``enclave up`` runs on one host: unless the operator chose a rate-limit store, the
    file store, which gateway workers on one host share (so there can be one per core),
    with the rest of the operator's limits; and the environment that tells the gateway."""
    limits = settings.gateway.rate_limit
    if "backend" in limits.model_fields_set:
        return settings, {}
    chosen = limits.model_dump(mode="json", exclude_unset=True, exclude={"redis_url"})
    shared = limits.model_copy(update={"backend": "file"})
    gateway = settings.gateway.model_copy(update={"rate_limit": shared})
    env = {"ENCLAVE_GATEWAY_RATE_LIMIT": json.dumps({**chosen, "backend": "file"})}
    return settings.model_copy(update={"gateway": gateway}), env


def gateway_workers(settings: Settings, asked: int | None) -> tuple[int, str | None]:
    """How many gateway processes to run, and why only one when more cores are there.

    ``--workers`` or ENCLAVE_GATEWAY_WORKERS decide when given (and are refused, not
    lowered, if the settings cannot share them); otherwise one per core, up to
    :data:`AUTO_WORKERS_MAX`, when the rate limits live in a store processes share.
    """
    if asked is not None:
        return asked, None
    if "workers" in settings.gateway.model_fields_set:
        return settings.gateway.workers, None
    cores = min(os.cpu_count() or 1, AUTO_WORKERS_MAX)
    why = workers_refusal(settings, cores)
    if cores == 1 or why is None:
        return cores, None
    return 1, f"one gateway worker, not {cores} (one per core): {why}"


def say(text: str) -> None:
    """One lifecycle event on the terminal, as one readable line."""
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


def first_chat(base: str, key: str, model: str) -> str:
    """The banner's proof that the path works. No sampling parameters: the node's model
    defaults are the ones a user's first request gets too."""
    body = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": QUESTION}]}
    return ask(f"{base}/v1", key, body).text.strip()


@dataclass
class Stack:
    """The two services and the launcher's state: starting, running, stopping."""

    gateway: Service
    node: Service
    stopping: threading.Event = field(default_factory=threading.Event)
    starting: bool = True

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping.is_set():  # the second Ctrl-C
            self.gateway.signal(signal.SIGKILL)
            self.node.signal(signal.SIGKILL)
            # os.write, not print: a handler that lands inside print() may not print again
            os.write(2, b"enclave: stopping at once: answers in flight are cut off\n")
            return
        self.stopping.set()
        if self.starting:  # nothing is being served yet: abandon the start
            raise KeyboardInterrupt

    def start(self, env: dict[str, str]) -> None:
        for service in (self.node, self.gateway):
            service.start(env)
            service.wait_ready(READY_TIMEOUT_S)
            say(f"{service.name} ready at {service.url} (pid {service.pid})")

    def supervise(self, env: dict[str, str], backoff: Backoff) -> int:
        """Until a signal (0), the gateway's death or the node given up on (1)."""
        node = NodeSupervisor(self.node, env, backoff, say, READY_TIMEOUT_S, time.monotonic())
        while not self.stopping.wait(0.25):
            returncode = self.gateway.exited()
            if returncode is not None:
                lines = "".join(f"\n    | {line}" for line in self.gateway.last_lines())
                say(f"gateway died: {exit_reason(returncode)}; stopping the node{lines}")
                return 1
            try:
                node.check()
            except GiveUpError as exc:
                say(str(exc))
                return 1
        return 0

    def drain(self) -> None:
        """The gateway first, finishing what is in flight, then the node it still needs."""
        if self.gateway.running():
            say(
                f"draining: the gateway finishes the requests in flight (up to"
                f" {self.gateway.drain_s:g} s; Ctrl-C again stops at once)"
            )
        self.gateway.stop()
        self.node.stop()
        say("stopped")


def up(
    settings: Settings,
    check_only: bool = False,
    verbose: bool = False,
    drain_s: float = DRAIN_S,
    max_restarts: int = 5,
    workers: int | None = None,
) -> int:
    """``enclave up``: 0 once stopped by a signal (or after ``--check``), 1 on a failure,
    2 when a port is taken or the gateway workers asked for are refused."""
    settings, limits = host_limits(settings)
    count, fallback = gateway_workers(settings, workers)
    refused = workers_refusal(settings, count)
    if refused is not None:
        print(f"enclave: {refused}", file=sys.stderr)
        return 2
    logs = settings.data_dir / "logs"
    gateway, node = settings.gateway, settings.node
    stack = Stack(
        Service("gateway", gateway.host, gateway.port, logs / "gateway.log", drain_s, PORT_FLAG),
        Service("node", node.host, node.port, logs / "node.log", drain_s, NODE_PORT_FLAG),
    )
    try:  # both ports, before anything starts or is written
        for service in (stack.gateway, stack.node):
            bind(service.name, service.host, service.port, service.how_to_change).close()
    except PortTakenError as exc:
        print(f"enclave: {exc}", file=sys.stderr)
        return 2
    key = api_key(settings)
    env = {
        **child_env(settings, key, node_key(settings)),
        **limits,
        "ENCLAVE_GATEWAY_WORKERS": str(count),
    }
    shared = " sharing the file rate-limit store" if limits and count > 1 else ""
    say(fallback or f"gateway: {count} worker{'s' if count > 1 else ''}{shared}")
    handlers = {sig: signal.signal(sig, stack.on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    following = threading.Event()
    if verbose:
        follow([stack.gateway.log, stack.node.log], following)
    try:
        return run(stack, settings, env, key, check_only, Backoff(max_failures=max_restarts))
    except KeyboardInterrupt:  # a signal in the instant between the start and the banner
        return 0
    finally:
        # a Ctrl-C during this drain may only mean "stop at once", never abandon a start
        stack.starting = False
        stack.stopping.set()
        stack.drain()  # every way out, a failure of our own included
        following.set()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def run(
    stack: Stack,
    settings: Settings,
    env: dict[str, str],
    key: str,
    check_only: bool,
    backoff: Backoff,
) -> int:
    model = settings.gateway.deployments[0].model
    try:
        stack.start(env)
        answer, answered = first_chat(stack.gateway.url, key, model), True
    except KeyboardInterrupt:
        return 0
    except (PortTakenError, NotReadyError) as exc:
        failed = stack.node if stack.gateway.proc is None else stack.gateway
        say("".join([f"{exc}", *(f"\n    | {line}" for line in failed.last_lines())]))
        return 1
    except ChatError as exc:  # the stack is up; the banner says what the chat met
        answer, answered = f"(failed: {exc})", False
    stack.starting = False
    kept = settings.data_dir / "api_key"
    print(banner(stack, key, kept if kept.is_file() else None, model, answer), flush=True)
    if check_only:
        return 0 if answered else 1
    return stack.supervise(env, backoff)  # at once 0 if a signal came meanwhile


def banner(stack: Stack, key: str, kept: Path | None, model: str, answer: str) -> str:
    base = stack.gateway.url
    where = f"(kept in {kept})" if kept is not None else "(from ENCLAVE_GATEWAY_API_KEYS)"
    return f"""
Enclave is up.
  base URL    {base}/v1
  API key     {key}  {where}
  model       {model}
  logs        {stack.gateway.log}, {stack.node.log}
  first chat  "{QUESTION}" -> {answer!r}

Try it:
  curl {base}/v1/chat/completions \\
    -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello!"}}]}}'
  enclave chat "Hello!"

Ctrl-C stops both processes (requests in flight finish first).
"""


def follow(paths: list[Path], done: threading.Event) -> threading.Thread:
    """``--verbose``: copy the lines the services append to ``paths`` to stderr until ``done``."""

    def copy() -> None:
        offsets = {path: path.stat().st_size if path.exists() else 0 for path in paths}
        while not done.wait(0.2):
            for path in paths:
                with contextlib.suppress(OSError), path.open("rb") as log:
                    log.seek(offsets[path])
                    chunk = log.read()
                    whole = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits
                    offsets[path] += len(whole)
                    sys.stderr.buffer.write(whole)
                    sys.stderr.flush()

    thread = threading.Thread(target=copy, name="follow-logs", daemon=True)
    thread.start()
    return thread
