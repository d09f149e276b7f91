"""Admission control: a few generations at once, a bounded queue behind them, 503 beyond.

Requests come in two priorities. *Interactive* ones (someone is waiting for the answer;
the default) go before *background* ones (the titles, tags and follow-up suggestions a
chat frontend asks for beside each chat, marked ``x-enclave-priority: background`` by the
gateway):

* a free slot goes to the oldest waiting interactive request, and to a background one
  only while no interactive request waits;
* at most ``background_slots`` (one) generations are background at a time, whatever the
  capacity, so an interactive request never waits behind more than one background
  generation — with a single slot too;
* at most ``max_queue`` requests wait. When the queue is full, an interactive arrival
  takes the place of the newest background waiter (who is answered 503 instead), and a
  background arrival is refused: background work is shed first.

A freed slot is handed over, not raced for: :meth:`Admission.release` resolves the chosen
waiter's future, so a request arriving in between cannot take it. A waiter cancelled
while queued (its client went away) leaves the queue; one cancelled just after it was
handed a slot passes the slot on. Neither a slot nor a queue place can leak.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from prometheus_client import Counter, Gauge

from functions.errors import QueueFullError
from functions.metrics import Metrics

PRIORITY_HEADER = "x-enclave-priority"


class Priority(StrEnum):
    INTERACTIVE = "interactive"
    BACKGROUND = "background"

    @classmethod
    def of(cls, header: str | None) -> Priority:
        """The priority a header names; anything else (absent, unknown) is interactive.

        Callers can therefore only ever lower their own priority with it, never raise it.
        """
        if header is not None and header.strip().lower() == cls.BACKGROUND:
            return cls.BACKGROUND
        return cls.INTERACTIVE


@dataclass(eq=False, slots=True)
class Slot:
    """One generation's hold on the engine; give it back with :meth:`Admission.release`."""

    priority: Priority
    released: bool = False


class Admission:
    def __init__(
        self, capacity: int, max_queue: int, metrics: Metrics, background_slots: int = 1
    ) -> None:
        self._free = capacity
        self._background = 0  # background generations running
        self._background_slots = background_slots
        self._max_queue = max_queue
        self._queues: dict[Priority, deque[asyncio.Future[Slot]]] = {p: deque() for p in Priority}
        self._metrics = metrics
        # what queue_depth is measured against, and the 503s past it (alert rules use both)
        Gauge(
            "enclave_node_queue_capacity",
            "Requests that may wait for a slot",
            registry=metrics.registry,
        ).set(max_queue)
        self._rejected = Counter(
            "enclave_node_queue_rejections",
            "Requests refused with 503: every slot busy and the queue full (or, for a "
            "waiting background request, its place taken by an interactive one)",
            registry=metrics.registry,
        )
        # queue_depth split by priority (queue_depth itself stays unlabelled: the alert
        # rules divide it by queue_capacity, which has no priority)
        self._depth = Gauge(
            "enclave_node_queue_depth_by_priority",
            "Requests waiting for capacity, by priority",
            ["priority"],
            registry=metrics.registry,
        )
        self._gauges()

    @property
    def waiting(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    async def acquire(self, priority: Priority = Priority.INTERACTIVE) -> Slot:
        """Wait for a slot, or raise :class:`QueueFullError` if there is no room to wait."""
        self._prune()
        if self._may_start(priority):
            return self._take(priority)
        self._make_room(priority)
        waiter: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        queue = self._queues[priority]
        queue.append(waiter)
        self._gauges()
        try:
            return await waiter
        except BaseException:
            if waiter in queue:  # cancelled while waiting
                queue.remove(waiter)
            elif waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release(waiter.result())  # cancelled once handed a slot: pass it on
            self._gauges()
            raise

    def release(self, slot: Slot) -> None:
        """Give a slot back (a second release of the same slot does nothing)."""
        if slot.released:
            return
        slot.released = True
        self._free += 1
        if slot.priority is Priority.BACKGROUND:
            self._background -= 1
        self._metrics.in_flight.dec()
        self._hand_over()

    def _may_start(self, priority: Priority) -> bool:
        if self._free < 1 or self._queues[Priority.INTERACTIVE]:
            return False
        if priority is Priority.INTERACTIVE:
            return True
        return self._background < self._background_slots and not self._queues[priority]

    def _take(self, priority: Priority) -> Slot:
        self._free -= 1
        if priority is Priority.BACKGROUND:
            self._background += 1
        self._metrics.in_flight.inc()
        return Slot(priority)

    def _make_room(self, priority: Priority) -> None:
        """Raise :class:`QueueFullError` unless ``priority`` may join the queue."""
        if self.waiting < self._max_queue:
            return
        background = self._queues[Priority.BACKGROUND]
        if priority is Priority.INTERACTIVE and background:
            background.pop().set_exception(self._refusal())  # the newest one gives way
            return
        raise self._refusal()

    def _refusal(self) -> QueueFullError:
        self._rejected.inc()
        return QueueFullError(
            "The model server is at capacity; retry shortly.", headers={"retry-after": "1"}
        )

    def _hand_over(self) -> None:
        """Give free slots to the waiters due them."""
        while self._free > 0 and (chosen := self._pop_next()) is not None:
            priority, waiter = chosen
            waiter.set_result(self._take(priority))
        self._gauges()

    def _pop_next(self) -> tuple[Priority, asyncio.Future[Slot]] | None:
        """The next waiter due a slot, taken out of its queue: interactive ones first
        (``Priority`` lists them first), background ones within their share."""
        for priority in Priority:
            if priority is Priority.BACKGROUND and self._background >= self._background_slots:
                return None
            queue = self._queues[priority]
            while queue:
                waiter = queue.popleft()
                if not waiter.done():  # done: cancelled, its task not yet back to leave
                    return priority, waiter
        return None

    def _prune(self) -> None:
        """Drop waiters cancelled whose tasks have not yet run to leave the queue."""
        for queue in self._queues.values():
            for waiter in [w for w in queue if w.done()]:
                queue.remove(waiter)

    def _gauges(self) -> None:
        self._metrics.queue_depth.set(self.waiting)
        for priority, queue in self._queues.items():
            self._depth.labels(priority.value).set(len(queue))
