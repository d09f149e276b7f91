"""Which deployments are resting after failing: the router's health state.

A deployment that fails more than ``allowed_fails`` times within a minute rests
for ``cooldown_s``: routing still lists it, but after every deployment that is
not resting, as a last resort. An answer from a resting deployment (tried as that
last resort) ends its rest. ``cooldown_s == 0`` never rests anyone.

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
        self._until: dict[str, float] = {}  # deployment -> end of its rest (clock time)

    def failed(self, name: str) -> None:
        """Count a failure; one past ``allowed_fails`` within a minute starts a rest."""
        now = self._clock()
        recent = self._failures.setdefault(name, deque())
        recent.append(now)
        while recent[0] <= now - WINDOW_S:
            recent.popleft()
        if len(recent) > self._allowed_fails:
            self._until[name] = now + self._cooldown_s
            recent.clear()  # a fresh count once the rest is over

    def succeeded(self, name: str) -> None:
        """An answer: the deployment works, whatever its rest had left."""
        self._until.pop(name, None)

    def resting(self, names: Iterable[str]) -> set[str]:
        now = self._clock()
        return {name for name in names if self._until.get(name, now) > now}
