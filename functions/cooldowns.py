"""Which deployments are resting after failing: the router's health state.

A deployment that fails more than ``allowed_fails`` times within a minute rests
for ``cooldown_s``; one that answers 429 (rate limited: it is overloaded) rests at
once, as litellm's Router does. Routing still lists a resting deployment, but after
every deployment that is not resting, as a last resort. An answer from a resting
deployment to an attempt begun after its rest began (tried as that last resort)
ends the rest; an answer to an attempt begun before says nothing about it: that
request was in flight when the failures came. ``cooldown_s == 0`` never rests anyone.

The state is per process and in memory, as litellm's Router kept it before: it is
a hint for ordering, never a refusal. The gateway reports every attempt here
(:meth:`functions.routing.DeploymentRouter.record_failure`), relayed or
translated by litellm alike, and probing cold nodes is :mod:`functions.warmth`'s.
Names come from Settings, so the maps stay as small as the deployment list.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable

WINDOW_S = 60.0  # "failures per minute": a sliding minute


class Cooldowns:
    def __init__(
        self,
        allowed_fails: int,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._allowed_fails = allowed_fails
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        # deployment -> (start, end) of its rest, clock time
        self._rest: dict[str, tuple[float, float]] = {}

    def now(self) -> float:
        """The clock these cooldowns keep: stamp an attempt's start with it."""
        return self._clock()

    def failed(self, name: str, rate_limited: bool = False) -> None:
        """Count a failure; one past ``allowed_fails`` within a minute, or a 429, starts a rest."""
        now = self._clock()
        recent = self._failures.setdefault(name, deque())
        recent.append(now)
        while recent[0] <= now - WINDOW_S:
            recent.popleft()
        if rate_limited or len(recent) > self._allowed_fails:
            self._rest[name] = (now, now + self._cooldown_s)
            recent.clear()  # a fresh count once the rest is over

    def succeeded(self, name: str, started: float | None = None) -> None:
        """An answer to an attempt begun at ``started`` (default: now): if the attempt
        began after the deployment's rest did, the deployment works again."""
        rest = self._rest.get(name)
        if rest is not None and (started is None or started >= rest[0]):
            del self._rest[name]

    def resting(self, names: Iterable[str]) -> set[str]:
        now = self._clock()
        return {name for name in names if self._rest.get(name, (now, now))[1] > now}
