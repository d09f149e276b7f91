"""Keeping a key store's view fresh from the event loop without ever blocking it.

One task, started with the gateway's lifespan, runs the store's blocking
``refresh`` in a worker thread every ``reload_s`` (one conditional read: an
``fstat`` or a 304). A key the view does not know may have just been created by
another gateway or the CLI: :meth:`Revalidation.fresher` asks for a refresh at
once and waits for one that *began after* the miss, so a new key works at once
instead of after up to ``reload_s``. Misses share refreshes, and refreshes are
at least ``reload_s / 10`` apart, so a flood of unknown keys costs storage at
most ten small reads a second (and the login throttle, :mod:`functions.logins`,
turns the flooding address away first).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from loguru import logger

GAP_FRACTION = 10  # refreshes at least reload_s / this apart
MAX_WAIT_S = 2.0  # a miss waits at most reload_s plus this for a refresh


class Revalidation:
    def __init__(self, refresh: Callable[[], object], reload_s: float) -> None:
        self._refresh = refresh
        self._reload_s = reload_s
        self._gap_s = reload_s / GAP_FRACTION
        self._max_wait_s = reload_s + MAX_WAIT_S
        self._begun = 0  # refreshes begun
        self._done = 0  # refreshes finished, successful or not
        self._wanted = asyncio.Event()
        self._finished = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._last = float("-inf")  # when the last refresh began (monotonic)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Refresh once (a failure is logged and retried), then keep refreshing: the
        next refresh is ``reload_s`` after this one, or sooner if a miss asks."""
        self._last = time.monotonic()
        await asyncio.to_thread(self._refresh)
        self._task = asyncio.create_task(self._run(), name="key-store-revalidation")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def fresher(self) -> None:
        """Return once a refresh that began after this call has finished (or time is up)."""
        begun = self._begun
        self._wanted.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._max_wait_s), self._finished:
                await self._finished.wait_for(lambda: self._done > begun)

    async def _run(self) -> None:
        while True:
            # every key_reload_s from the start of the last read (not its end): a
            # revocation then reaches this gateway within key_reload_s plus one read
            wait = max(0.0, self._reload_s - (time.monotonic() - self._last))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), wait)
            self._last = time.monotonic()
            self._wanted.clear()
            self._begun += 1
            begun = self._begun
            try:
                await asyncio.to_thread(self._refresh)
            except Exception:  # a bug, not an outage (refresh logs those): keep watching
                logger.exception("key store refresh raised")
            async with self._finished:
                self._done = begun
                self._finished.notify_all()
            await asyncio.sleep(self._gap_s)
