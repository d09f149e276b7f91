"""Where the filters' scans run: small inputs inline, large ones in a worker process.

Every pattern is linear in its input, but masking a 1 MB paste with 50,000 findings
still takes seconds of pure Python. In a thread that would not be enough: the
``re`` module never releases the GIL, so the event loop would only get a turn
between regex calls, and a tiny request could wait most of a second behind a big
one (measured: 643-807 ms). A worker process has its own interpreter, so the
event loop keeps serving everyone else at full speed (invariant I4).

The worker builds its own :class:`FilterSet` from the same policy when it starts
(``spawn``: nothing of the gateway's threads or sockets is inherited). A spawned
child re-imports the gateway's main module: as much CPU as the gateway's own start
(1.5-2 s), and none of it comes from a memory snapshot. So the gateway starts it
:data:`START_DELAY_S` after itself (:meth:`Scanner.start_later`), when the caller
that woke a scaled-to-zero gateway has had its answer, rather than beside that first
request on the one core a small container has. It is ready a few seconds later
(``/health`` details say when); a large input that arrives before then starts it
at once and waits for it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor

from functions import scope
from functions.filtering.engine import FilterSet, MaskedConversation
from functions.filtering.policy import Direction, FilterPolicy
from functions.filtering.results import FilterResult
from functions.wire import ChatCompletionRequest

START_DELAY_S = 2.0  # from the gateway's start to its worker's: past a first plain answer

# The worker process's own filters, set once by its initializer (one per process).
_worker_filters: list[FilterSet] = []


def _start_worker(policy: FilterPolicy) -> None:
    parent = multiprocessing.parent_process()
    if parent is not None:  # never outlive the gateway, however it ends (SIGKILL included)
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    _worker_filters.append(FilterSet(policy))


def _exit_with(parent: multiprocessing.process.BaseProcess) -> None:
    parent.join()  # returns when the parent process is gone
    os._exit(0)


def _mask_in_worker(
    tenant: str, body: ChatCompletionRequest, retrieved: frozenset[int]
) -> MaskedConversation:
    scope.tenant.set(tenant)  # a worker process: the gateway's context does not come along
    return _worker_filters[0].for_tenant(tenant).mask_request(body, retrieved, tenant)


def _ready() -> bool:
    return bool(_worker_filters)


def _scan_in_worker(tenant: str, text: str, direction: Direction) -> FilterResult:
    scope.tenant.set(tenant)
    return _worker_filters[0].for_tenant(tenant).scan(text, direction)


class Scanner:
    """Runs scans for one gateway: inline up to ``inline_bytes``, else in a worker process."""

    def __init__(self, filters: FilterSet, workers: int = 1, inline_bytes: int = 16_384) -> None:
        self._filters = filters
        self._workers = workers
        self._inline_bytes = inline_bytes
        self._pool: ProcessPoolExecutor | None = None
        self._warm: Future[bool] | None = None
        self._later: asyncio.TimerHandle | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self._filters.policy,),
            )
        return self._pool

    def inline(self, size: int) -> bool:
        """Whether a request (or text) of ``size`` bytes is scanned here, on the event loop."""
        return size <= self._inline_bytes

    async def mask(
        self, size: int, tenant: str, body: ChatCompletionRequest, retrieved: frozenset[int]
    ) -> MaskedConversation:
        """:meth:`ContentFilter.mask_request` for a request of ``size`` bytes."""
        if self.inline(size):
            return self._filters.for_tenant(tenant).mask_request(body, retrieved, tenant)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor(), _mask_in_worker, tenant, body, retrieved
        )

    async def scan(self, tenant: str, text: str, direction: Direction) -> FilterResult:
        """:meth:`ContentFilter.scan` of one text."""
        if self.inline(len(text)):
            return self._filters.for_tenant(tenant).scan(text, direction)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor(), _scan_in_worker, tenant, text, direction
        )

    def start(self) -> None:
        """Start the worker now, in the background: a first large request should not wait
        for a process to start and load the lexicons (nor compete with it for a core)."""
        if self._warm is None:
            self._warm = self._executor().submit(_ready)

    def start_later(self, delay_s: float = START_DELAY_S) -> None:
        """:meth:`start`, ``delay_s`` from now (on the running loop)."""
        self._later = asyncio.get_running_loop().call_later(delay_s, self.start)

    @property
    def ready(self) -> bool:
        """Whether the worker has started and loaded its filters (for ``/health``)."""
        warm = self._warm
        return warm is not None and warm.done() and warm.exception() is None and warm.result()

    def close(self) -> None:
        if self._later is not None:
            self._later.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
