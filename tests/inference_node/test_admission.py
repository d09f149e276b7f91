"""Admission: a slot at once, a bounded queue behind it, 503 beyond; interactive requests
first, background ones on at most one slot; cancellation leaks nothing; the gauges tell
the truth. Deterministic: waiters are awaited or checked after the loop settles, never timed.
"""

from __future__ import annotations

import asyncio

import pytest

from functions.errors import QueueFullError
from functions.metrics import Metrics
from inference_node.admission import Admission, Priority, Slot

INTERACTIVE, BACKGROUND = Priority.INTERACTIVE, Priority.BACKGROUND


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(f"enclave_node_{name}", labels)


async def settle() -> None:
    """Let every task that can run, run (a waiter parks on a future: no timing involved)."""
    for _ in range(5):
        await asyncio.sleep(0)


def waiting(admission: Admission, priority: Priority) -> asyncio.Future[Slot]:
    return asyncio.ensure_future(admission.acquire(priority))


def test_capacity_queue_and_refusal() -> None:
    metrics = Metrics("node")
    admission = Admission(capacity=1, max_queue=1, metrics=metrics)
    assert sample(metrics, "queue_capacity") == 1
    assert sample(metrics, "queue_rejections_total") == 0  # exists before the first 503

    async def main() -> None:
        slot = await asyncio.wait_for(admission.acquire(), timeout=1)  # a free slot: at once
        assert slot.priority is INTERACTIVE  # the default
        assert sample(metrics, "in_flight") == 1
        assert sample(metrics, "queue_depth") == 0

        waiter = asyncio.ensure_future(admission.acquire())
        await settle()
        assert not waiter.done()  # queued behind the running one
        assert admission.waiting == 1
        assert sample(metrics, "queue_depth") == 1

        with pytest.raises(QueueFullError) as refused:
            await asyncio.wait_for(admission.acquire(), timeout=1)  # refused at once
        assert refused.value.status_code == 503
        assert refused.value.code == "queue_full"
        assert refused.value.headers["retry-after"] == "1"
        assert admission.waiting == 1  # the refusal did not join the queue
        assert sample(metrics, "queue_rejections_total") == 1

        admission.release(slot)
        second = await asyncio.wait_for(waiter, timeout=1)  # the waiter proceeds
        assert admission.waiting == 0
        assert sample(metrics, "queue_depth") == 0
        assert sample(metrics, "in_flight") == 1

        admission.release(second)
        assert sample(metrics, "in_flight") == 0

    asyncio.run(main())


def test_a_freed_queue_place_can_be_taken_again() -> None:
    admission = Admission(capacity=1, max_queue=1, metrics=Metrics("node"))

    async def main() -> None:
        slot = await admission.acquire()
        first = asyncio.ensure_future(admission.acquire())
        await settle()
        admission.release(slot)
        slot = await first
        second = asyncio.ensure_future(admission.acquire())  # the queue place is free again
        await settle()
        assert not second.done()
        admission.release(slot)
        admission.release(await asyncio.wait_for(second, timeout=1))

    asyncio.run(main())


def test_a_cancelled_waiter_leaves_the_queue() -> None:
    metrics = Metrics("node")
    admission = Admission(capacity=1, max_queue=1, metrics=metrics)

    async def main() -> None:
        slot = await admission.acquire()
        waiter = asyncio.ensure_future(admission.acquire())
        await settle()
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        assert admission.waiting == 0
        assert sample(metrics, "queue_depth") == 0
        assert sample(metrics, "in_flight") == 1  # the cancelled one never ran
        # its place is free: another may wait (no QueueFullError)
        again = asyncio.ensure_future(admission.acquire())
        await settle()
        assert not again.done()
        admission.release(slot)
        admission.release(await asyncio.wait_for(again, timeout=1))

    asyncio.run(main())


def test_no_queue_means_refusal_as_soon_as_busy() -> None:
    admission = Admission(capacity=2, max_queue=0, metrics=Metrics("node"))

    async def main() -> None:
        await admission.acquire()
        await asyncio.wait_for(admission.acquire(), timeout=1)  # capacity 2
        with pytest.raises(QueueFullError):
            await admission.acquire()

    asyncio.run(main())


def test_a_waiting_interactive_request_goes_before_earlier_background_ones() -> None:
    admission = Admission(capacity=1, max_queue=8, metrics=Metrics("node"))

    async def main() -> None:
        running = await admission.acquire(BACKGROUND)
        early = waiting(admission, BACKGROUND)
        await settle()
        person = waiting(admission, INTERACTIVE)  # arrives after the background one
        await settle()
        assert not early.done() and not person.done()

        admission.release(running)
        await settle()
        assert person.done() and not early.done()  # the slot went to the person
        admission.release(person.result())
        await settle()
        assert early.done()  # then to the background request
        admission.release(early.result())

    asyncio.run(main())


def test_background_holds_one_slot_whatever_the_capacity() -> None:
    metrics = Metrics("node")
    admission = Admission(capacity=3, max_queue=8, metrics=metrics)

    async def main() -> None:
        title = await asyncio.wait_for(admission.acquire(BACKGROUND), timeout=1)
        tags = waiting(admission, BACKGROUND)
        await settle()
        assert not tags.done()  # two slots free, but background already holds its one
        assert sample(metrics, "queue_depth_by_priority", priority="background") == 1
        assert sample(metrics, "queue_depth_by_priority", priority="interactive") == 0
        # an interactive request is not delayed by the background one: it starts at once
        chats = [await asyncio.wait_for(admission.acquire(), timeout=1) for _ in range(2)]
        assert sample(metrics, "in_flight") == 3

        admission.release(chats[0])
        await settle()
        assert not tags.done()  # a freed slot is not background's while title runs
        admission.release(title)
        await settle()
        assert tags.done() and tags.result().priority is BACKGROUND
        assert sample(metrics, "queue_depth_by_priority", priority="background") == 0
        for slot in (chats[1], tags.result()):
            admission.release(slot)
        assert sample(metrics, "in_flight") == 0

    asyncio.run(main())


def test_a_full_queue_sheds_background_work_first() -> None:
    metrics = Metrics("node")
    admission = Admission(capacity=1, max_queue=2, metrics=metrics)

    async def main() -> None:
        running = await admission.acquire()
        older, newer = waiting(admission, BACKGROUND), waiting(admission, BACKGROUND)
        await settle()
        with pytest.raises(QueueFullError):  # the queue is full: background refused
            await admission.acquire(BACKGROUND)

        person = waiting(admission, INTERACTIVE)  # takes the newest background place
        await settle()
        with pytest.raises(QueueFullError):
            await newer
        assert not older.done() and not person.done()
        assert admission.waiting == 2

        other = waiting(admission, INTERACTIVE)  # takes the last background place
        await settle()
        with pytest.raises(QueueFullError):
            await older
        with pytest.raises(QueueFullError):  # full of interactive requests: refused too
            await admission.acquire(INTERACTIVE)
        assert sample(metrics, "queue_rejections_total") == 4

        admission.release(running)
        admission.release(await person)
        admission.release(await other)
        assert sample(metrics, "in_flight") == 0 and admission.waiting == 0

    asyncio.run(main())


def test_a_waiter_cancelled_as_it_is_handed_a_slot_passes_the_slot_on() -> None:
    metrics = Metrics("node")
    admission = Admission(capacity=1, max_queue=8, metrics=metrics)

    async def main() -> None:
        running = await admission.acquire()
        first, second = waiting(admission, INTERACTIVE), waiting(admission, BACKGROUND)
        await settle()
        admission.release(running)  # hands the slot to `first`…
        first.cancel()  # …whose client goes away before it resumes
        await settle()
        assert first.cancelled()
        assert second.done()  # the slot went on, not lost
        assert sample(metrics, "in_flight") == 1 and admission.waiting == 0
        admission.release(second.result())
        assert sample(metrics, "in_flight") == 0
        # every slot is back: the capacity is whole again
        admission.release(await asyncio.wait_for(admission.acquire(), timeout=1))

    asyncio.run(main())


def test_a_cancelled_waiter_frees_its_place_before_its_task_runs_again() -> None:
    admission = Admission(capacity=1, max_queue=1, metrics=Metrics("node"))

    async def main() -> None:
        running = await admission.acquire()
        gone = waiting(admission, BACKGROUND)
        await settle()
        gone.cancel()  # its task resumes later, on the loop's next turn
        asyncio.get_running_loop().call_soon(admission.release, running)
        # this acquire runs before that turn: the full-looking queue still has room
        slot = await admission.acquire(INTERACTIVE)
        assert gone.cancelled() and admission.waiting == 0
        admission.release(slot)

    asyncio.run(main())


def test_a_slot_released_twice_is_released_once() -> None:
    metrics = Metrics("node")
    admission = Admission(capacity=1, max_queue=0, metrics=metrics)

    async def main() -> None:
        slot = await admission.acquire()
        admission.release(slot)
        admission.release(slot)
        assert sample(metrics, "in_flight") == 0
        held = await admission.acquire()
        with pytest.raises(QueueFullError):  # still one slot, not two
            await admission.acquire()
        admission.release(held)

    asyncio.run(main())


@pytest.mark.parametrize(
    ("header", "priority"),
    [
        ("background", BACKGROUND),
        (" Background ", BACKGROUND),
        ("interactive", INTERACTIVE),
        (None, INTERACTIVE),
        ("", INTERACTIVE),
        ("urgent", INTERACTIVE),  # unknown: interactive, so a header can only demote
    ],
)
def test_the_priority_header(header: str | None, priority: Priority) -> None:
    assert Priority.of(header) is priority
