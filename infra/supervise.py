"""Keeping the node up while the gateway runs: say why it died, restart it with back-off.

The node is the part expected to die now and then (an engine crash, the kernel's
OOM killer on a big model); the gateway keeps answering meanwhile — 503 for the
node's models, other deployments as usual — and the node is started again after
1 s, 2 s, 4 s … (capped). A node that then stays healthy for ``stable_s`` has its
count of failures forgiven; ``max_failures`` quick failures in a row is a node
that cannot run here, and the launcher gives up rather than loop forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from infra.services import PortTakenError, Service, exit_reason


class GiveUpError(Exception):
    """The node failed too often in a row; the message says how often and why last."""


@dataclass
class Backoff:
    """Delays before restarting: ``first_s`` doubling up to ``cap_s``; None means give up."""

    first_s: float = 1.0
    cap_s: float = 30.0
    stable_s: float = 60.0  # healthy this long: the earlier failures are forgiven
    max_failures: int = 5
    failures: int = 0

    def next_delay(self, healthy_for_s: float) -> float | None:
        if healthy_for_s >= self.stable_s:
            self.failures = 0
        self.failures += 1
        if self.failures > self.max_failures:
            return None
        return float(min(self.cap_s, self.first_s * 2 ** (self.failures - 1)))


@dataclass
class NodeSupervisor:
    """Looks at the node once per :meth:`check`; restarts it when it died."""

    node: Service
    env: dict[str, str]
    backoff: Backoff
    say: Callable[[str], None]
    ready_timeout_s: float
    ready_at: float | None = None  # when the running node last answered /health ok
    restart_at: float | None = None  # when a dead node is due to start again

    def check(self, now: float | None = None) -> None:
        """Report a death, restart when due, notice a restarted node's readiness.

        Raises :class:`GiveUpError` after too many quick failures.
        """
        now = time.monotonic() if now is None else now
        if self.restart_at is not None:
            if now >= self.restart_at:
                self._restart(now)
            return
        returncode = self.node.exited()
        if returncode is not None:
            self._failed(f"died: {exit_reason(returncode)}", self.node.last_lines(), now)
        elif self.ready_at is None:
            self._watch_start(now)

    def _watch_start(self, now: float) -> None:
        state = self.node.health()
        if state == "ok":
            self.ready_at = now
            self.say(f"node is up again (pid {self.node.pid}) at {self.node.url}")
        elif state.startswith("failed") or now - self.node.started_at > self.ready_timeout_s:
            why = state if state != "starting" else f"not ready in {self.ready_timeout_s:.0f} s"
            self.node.kill()
            self._failed(why, self.node.last_lines(), now)

    def _failed(self, why: str, lines: list[str], now: float) -> None:
        healthy_for = now - self.ready_at if self.ready_at is not None else 0.0
        self.ready_at = None
        self.say(f"node {why}" + "".join(f"\n    | {line}" for line in lines))
        delay = self.backoff.next_delay(healthy_for)
        if delay is None:
            raise GiveUpError(
                f"node failed {self.backoff.failures} times in a row; giving up"
                f" (last: {why}; its log: {self.node.log})"
            )
        self.say(f"restarting the node in {delay:g} s (the gateway answers 503 for it meanwhile)")
        self.restart_at = now + delay

    def _restart(self, now: float) -> None:
        self.restart_at = None
        try:
            self.node.start(self.env)
        except PortTakenError as exc:
            self._failed(f"could not start: {exc}", [], now)
            return
        self.say(f"node starting again (pid {self.node.pid})")
