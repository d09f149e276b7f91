"""Admission control: a few generations at once, a bounded queue behind them, 503 beyond."""

from __future__ import annotations

import asyncio

from prometheus_client import Counter, Gauge

from functions.errors import QueueFullError
from functions.metrics import Metrics


class Admission:
    def __init__(self, capacity: int, max_queue: int, metrics: Metrics) -> None:
        self._slots = asyncio.Semaphore(capacity)
        self._max_queue = max_queue
        self._waiting = 0
        self._metrics = metrics
        # what queue_depth is measured against, and the 503s past it (alert rules use both)
        Gauge(
            "enclave_node_queue_capacity",
            "Requests that may wait for a slot",
            registry=metrics.registry,
        ).set(max_queue)
        self._rejected = Counter(
            "enclave_node_queue_rejections",
            "Requests refused with 503: every slot busy and the queue full",
            registry=metrics.registry,
        )

    @property
    def waiting(self) -> int:
        return self._waiting

    async def acquire(self) -> None:
        """Wait for a free slot, or raise :class:`QueueFullError` at once if the queue is full."""
        if self._slots.locked() and self._waiting >= self._max_queue:
            self._rejected.inc()
            raise QueueFullError(
                "The model server is at capacity; retry shortly.", headers={"retry-after": "1"}
            )
        self._waiting += 1
        self._metrics.queue_depth.set(self._waiting)
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
            self._metrics.queue_depth.set(self._waiting)
        self._metrics.in_flight.inc()

    def release(self) -> None:
        self._metrics.in_flight.dec()
        self._slots.release()
