"""Admission: a slot at once, a bounded queue behind it, 503 beyond; the gauges tell the truth."""

from __future__ import annotations

import asyncio

import pytest

from functions.errors import QueueFullError
from functions.metrics import Metrics
from inference_node.admission import Admission


def sample(metrics: Metrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(f"enclave_node_{name}")


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_capacity_queue_and_refusal() -> None:
    metrics = Metrics("node")
    admission = Admission(capacity=1, max_queue=1, metrics=metrics)
    assert sample(metrics, "queue_capacity") == 1
    assert sample(metrics, "queue_rejections_total") == 0  # exists before the first 503

    async def main() -> None:
        await asyncio.wait_for(admission.acquire(), timeout=1)  # a free slot: at once
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

        admission.release()
        await asyncio.wait_for(waiter, timeout=1)  # the waiter proceeds
        assert admission.waiting == 0
        assert sample(metrics, "queue_depth") == 0
        assert sample(metrics, "in_flight") == 1

        admission.release()
        assert sample(metrics, "in_flight") == 0

    asyncio.run(main())


def test_a_freed_queue_place_can_be_taken_again() -> None:
    admission = Admission(capacity=1, max_queue=1, metrics=Metrics("node"))

    async def main() -> None:
        await admission.acquire()
        first = asyncio.ensure_future(admission.acquire())
        await settle()
        admission.release()
        await first
        second = asyncio.ensure_future(admission.acquire())  # the queue place is free again
        await settle()
        assert not second.done()
        admission.release()
        await asyncio.wait_for(second, timeout=1)
        admission.release()

    asyncio.run(main())


def test_a_cancelled_waiter_leaves_the_queue() -> None:
    metrics = Metrics("node")
    admission = Admission(capacity=1, max_queue=1, metrics=metrics)

    async def main() -> None:
        await admission.acquire()
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
        admission.release()
        await asyncio.wait_for(again, timeout=1)
        admission.release()

    asyncio.run(main())


def test_no_queue_means_refusal_as_soon_as_busy() -> None:
    admission = Admission(capacity=2, max_queue=0, metrics=Metrics("node"))

    async def main() -> None:
        await admission.acquire()
        await asyncio.wait_for(admission.acquire(), timeout=1)  # capacity 2
        with pytest.raises(QueueFullError):
            await admission.acquire()

    asyncio.run(main())
