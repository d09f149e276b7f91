"""One child service of ``enclave up``: its port, its process, its log file.

The launcher binds each service's port itself before anything starts and hands
the listening socket to the child (``enclave serve SERVICE --fd N``). A taken
port is therefore found before any process starts, and named; and whatever
answers on the port afterwards is our own child, never another server that
happened to be there: nothing else can listen on a socket we hold. The launcher
closes its copy once the child runs, so when the child dies the port closes and
callers get a refused connection (down, not a hang in the listen backlog).

Children run in their own session (``start_new_session``): a Ctrl-C in the
terminal reaches only the launcher, which then stops them in order — the
gateway first, draining its requests, then the node. Their output (JSON log
lines, and whatever a native library prints) goes to ``<data_dir>/logs/<name>.log``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

LISTEN_BACKLOG = 2048  # uvicorn's default
DRAIN_S = 30.0  # how long a stop waits for the answers in flight (uvicorn's graceful shutdown)
KILL_AFTER_S = 25.0  # past the drain: the lifespan's own shutdown (up to 10 s for the last
# audit records, functions.lifecycle.DRAIN_TIMEOUT_S, then the flush and engine close)
TAIL_BYTES = 16_384  # enough for the last few log lines, even long JSON ones


class PortTakenError(Exception):
    """A service's port cannot be bound; the message says which and what to do."""


class NotReadyError(Exception):
    """A service exited, failed or timed out before its ``/health`` said ok."""


def bind(service: str, host: str, port: int, how_to_change: str) -> socket.socket:
    """The listening socket for ``service``, or a :class:`PortTakenError` naming the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=LISTEN_BACKLOG)
    except OSError as exc:
        why = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc})"
        raise PortTakenError(
            f"port {port} on {host} ({service}) {why}: stop what is listening there, "
            f"or choose another port with {how_to_change}"
        ) from exc


def exit_reason(returncode: int) -> str:
    """``exited with status 1`` or ``killed by SIGKILL``."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


def readable(line: str) -> str:
    """A JSON log line as ``level message (error)``; any other line as it is."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or "message" not in record:
        return line
    error = record.get("error.message") or record.get("error.type")
    level = record.get("log.level", "")
    return f"{level} {record['message']}" + (f" ({error})" if error else "")


@dataclass
class Service:
    """``enclave serve NAME`` on a socket we bound, logging to ``log``."""

    name: str
    host: str
    port: int
    log: Path
    drain_s: float
    how_to_change: str  # the flag or variable that moves this port, for the error
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    _log_offset: int = field(default=0, repr=False)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, env: dict[str, str]) -> None:
        """Bind the port (or raise :class:`PortTakenError`) and start the child on it."""
        sock = bind(self.name, self.host, self.port, self.how_to_change)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with sock, self.log.open("ab") as sink:
            self._log_offset = sink.tell()
            fd = sock.fileno()
            argv = ["serve", self.name, "--fd", str(fd), "--drain-s", f"{self.drain_s:g}"]
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "infra.cli", *argv],
                env=env,
                cwd=Path.cwd(),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                pass_fds=(fd,),
                start_new_session=True,  # the terminal's Ctrl-C is the launcher's alone
            )
        self.started_at = time.monotonic()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exited(self) -> int | None:
        """The exit status once the child has ended (negative: the signal), else None."""
        return self.proc.poll() if self.proc is not None else None

    def health(self) -> str:
        """``ok``, ``starting``, or why it failed (the node's load error)."""
        try:
            response = httpx.get(f"{self.url}/health", timeout=1.0)
        except httpx.TransportError:
            return "starting"
        if response.status_code == 200:
            return "ok"
        try:
            body = response.json()
        except ValueError:
            return "starting"
        if isinstance(body, dict) and body.get("status") == "failed":
            return f"failed: {body.get('detail')}"
        return "starting"

    def wait_ready(self, timeout: float) -> None:
        """Until ``/health`` says ok; a child that exits or fails first is a :class:`NotReadyError`.

        Only our child can answer on the socket we bound, and it must still be running.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            returncode = self.exited()
            if returncode is not None:
                raise NotReadyError(f"{self.name} {exit_reason(returncode)} before it was ready")
            state = self.health()
            if state == "ok" and self.running():
                return
            if state.startswith("failed"):
                raise NotReadyError(f"{self.name} {state}")
            time.sleep(0.2)
        raise NotReadyError(f"{self.name} was not ready within {timeout:.0f} s")

    def last_lines(self, count: int = 5) -> list[str]:
        """The last ``count`` lines this child wrote to its log, made readable."""
        try:
            with self.log.open("rb") as log:
                size = log.seek(0, 2)
                log.seek(max(self._log_offset, size - TAIL_BYTES))
                text = log.read().decode("utf-8", "replace")
        except OSError:
            return []
        return [readable(line) for line in text.splitlines()[-count:] if line.strip()]

    def signal(self, signum: int) -> None:
        """SIGTERM to the child, which stops what it started (a gateway's workers) in order;
        SIGKILL to its whole process group, which would otherwise outlive it."""
        if self.running():
            assert self.proc is not None
            if signum == signal.SIGKILL:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signum)  # its own session: the group is its own
            else:
                self.proc.send_signal(signum)

    def kill(self) -> None:
        """At once (a second Ctrl-C, a node that never got ready)."""
        if self.proc is not None:
            self.signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> int | None:
        """SIGTERM, then wait for the drain and the lifespan's shutdown; SIGKILL past that."""
        if self.proc is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=self.drain_s + KILL_AFTER_S)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.wait()
