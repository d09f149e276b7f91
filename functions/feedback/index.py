"""Which answers can be rated, for feedback kept in a bucket: Redis, or one process's memory.

The index maps (tenant, request id) to the answer's experiment and variant for
``gateway.feedback_window_days``. It is small, hot (one write per answered chat)
and disposable (losing it only turns a rating into a 404), so it does not go to
the bucket, which would cost one PUT per chat and keep objects for ever:

- :class:`~functions.feedback.redis.RedisIndex` when the rate limits are counted in
  Redis: shared by every gateway container, each key with a TTL of the window.
- :class:`MemoryIndex` otherwise: one process's, bounded. Only one container can
  run then (the settings refuse more without Redis), but a restart (scale to zero)
  forgets it: answers given before it can no longer be rated.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

Answered = tuple[str | None, str | None]  # the answer's experiment and variant
MAX_REMEMBERED = 100_000  # ~35 MB at most (measured with 55-character ids)


class RequestIndex(Protocol):
    """Raises :class:`~functions.errors.StorageUnavailableError` when unreachable."""

    async def remember(self, tenant: str, request_id: str, answered: Answered) -> None:
        """Index an answer; a reused id now names this one."""
        ...

    async def lookup(self, tenant: str, request_id: str) -> Answered | None:
        """The answer under the id in the tenant, or None (unknown, or past the window)."""
        ...

    async def aclose(self) -> None: ...


class MemoryIndex:
    """One process's index: the latest :data:`MAX_REMEMBERED` answers within the window."""

    def __init__(
        self,
        window_s: float,
        max_entries: int = MAX_REMEMBERED,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._clock = clock
        # oldest first: re-remembering an id moves it to the end
        self._answers: OrderedDict[tuple[str, str], tuple[Answered, float]] = OrderedDict()

    async def remember(self, tenant: str, request_id: str, answered: Answered) -> None:
        now = self._clock()
        key = (tenant, request_id)
        self._answers.pop(key, None)
        self._answers[key] = (answered, now)
        while self._answers:  # amortised O(1): each entry leaves once
            _, (_, oldest) = next(iter(self._answers.items()))
            if len(self._answers) <= self.max_entries and oldest >= now - self.window_s:
                break
            self._answers.popitem(last=False)

    async def lookup(self, tenant: str, request_id: str) -> Answered | None:
        found = self._answers.get((tenant, request_id))
        if found is None or found[1] < self._clock() - self.window_s:
            return None
        return found[0]

    async def aclose(self) -> None:
        """Nothing to release: the answers go with the process."""
