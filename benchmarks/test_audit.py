"""What the audit log adds to a request: ``record()`` on the request path, writing behind it.

``record()`` is all a request pays in line: a dict copy and a ``put_nowait``. The
sealing (HMAC), encryption (content capture), write, fsync per batch and the
head's Ed25519 signature run in a thread; their throughput bounds the sustained
request rate, and their CPU per record is the rest of the per-request cost.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.conftest import report
from functions.audit import AuditLog, AuditSettings, build_request_record, generate_keys

CHUNK = 1_000  # record() calls per timed round


def settings_for(root: Path, **overrides: Any) -> AuditSettings:
    return AuditSettings(directory=root / "audit", **generate_keys(root / "keys"), **overrides)


def event(i: int, content: bool = False) -> dict[str, Any]:
    return build_request_record(
        trace_id=f"trace-{i}",
        principal="key-7f3a",
        tenant="acme",
        role="member",
        model="smollm2",
        deployment="local-cpu",
        tokens_in=120,
        tokens_out=48,
        latency_ms=412.25,
        status=200,
        decisions={"auth": "ok", "filter.input": "pass", "route": "local-cpu"},
        prompt=[{"role": "user", "content": "Name one colour of the rainbow." * 20}]
        if content
        else None,
        answer="Red. " * 40 if content else None,
    )


@pytest.mark.parametrize("build", [False, True], ids=["record", "build+record"])
def test_request_path_cost(benchmark: Any, tmp_path: Path, build: bool) -> None:
    loop = asyncio.new_event_loop()
    log = AuditLog(settings_for(tmp_path, queue_size=CHUNK * 2))
    loop.run_until_complete(log.start())
    ready = event(0)

    def chunk() -> None:
        for i in range(CHUNK):
            log.record(event(i) if build else ready)

    def drain() -> None:  # untimed: the writer empties the queue between rounds
        loop.run_until_complete(log.flush())

    try:
        benchmark.pedantic(chunk, setup=drain, rounds=50, iterations=1, warmup_rounds=3)
        loop.run_until_complete(log.aclose())
    finally:
        loop.close()
    assert log.failures == 0
    per_call_us = benchmark.stats.stats.median * 1e6 / CHUNK
    report(benchmark, f"audit {'build+record' if build else 'record'}", per_call_us=per_call_us)


@pytest.mark.parametrize(
    ("capture", "batch_size", "count"),
    [(False, 512, 20_000), (True, 512, 20_000), (False, 16, 4_000)],
    ids=["plain-batch512", "capture-batch512", "plain-batch16"],
)
def test_background_write_throughput(
    benchmark: Any, tmp_path: Path, capture: bool, batch_size: int, count: int
) -> None:
    settings = settings_for(tmp_path, batch_size=batch_size, queue_size=count)
    if capture:
        settings = settings.model_copy(update={"capture_content": True})
    events = [event(i, capture) for i in range(count)]
    cpu: list[float] = []

    async def write_all() -> None:
        log = AuditLog(settings)
        await log.start()
        started = time.process_time()
        for e in events:
            log.record(e)
        await log.aclose()
        cpu.append(time.process_time() - started)
        assert (log.written, log.failures) == (count, 0)

    benchmark.pedantic(lambda: asyncio.run(write_all()), rounds=3, iterations=1)
    seconds = benchmark.stats.stats.median
    report(
        benchmark,
        f"audit write {benchmark.name.split('[')[1][:-1]}",
        records_per_s=count / seconds,
        cpu_us_per_record=min(cpu) * 1e6 / count,
        batches_per_s=count / batch_size / seconds,
    )


@pytest.mark.parametrize("writers", [1, 8, 64])
@pytest.mark.parametrize("mode", ["durable", "record"])
def test_durable_latency(benchmark: Any, tmp_path: Path, writers: int, mode: str) -> None:
    """What a request waits for its record: ``await durable()`` (group commit) vs ``record()``.

    ``writers`` concurrent requests each record ``PER_WRITER`` times in a row; the
    latency is from the call to its return (for ``durable``, the record written,
    fsynced and under the signed head). ``records_per_fsync`` is records per commit
    (write, fsync, head); ``records_per_s`` runs until the last record is written.
    """
    per_writer = max(20, 1_280 // writers)
    latencies: list[float] = []
    commits: list[tuple[int, int]] = []  # (records written, commits) per round
    elapsed: list[float] = []  # seconds from the first call to the last record written
    ready = event(0)

    async def round_() -> None:
        log = AuditLog(settings_for(tmp_path / f"r{len(commits)}", queue_size=100_000))
        await log.start()
        await log.durable(ready)  # the day's file exists: a steady state

        async def writer() -> None:
            for _ in range(per_writer):
                started = time.perf_counter()
                if mode == "durable":
                    await log.durable(ready)
                    latencies.append(time.perf_counter() - started)
                else:
                    log.record(ready)
                    latencies.append(time.perf_counter() - started)
                    await asyncio.sleep(0)  # let the others in, as requests would

        written, done = log.written, log.commits
        started = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(writers)))
        await log.flush()  # record(): until written, to compare throughput
        elapsed.append(time.perf_counter() - started)
        commits.append((log.written - written, log.commits - done))
        await log.aclose()
        assert log.failures == 0

    benchmark.pedantic(lambda: asyncio.run(round_()), rounds=3, iterations=1)
    latencies.sort()
    records, batches = sum(r for r, _ in commits), sum(c for _, c in commits)
    report(
        benchmark,
        f"audit {mode} x{writers}",
        p50_us=latencies[len(latencies) // 2] * 1e6,
        p99_us=latencies[int(len(latencies) * 0.99)] * 1e6,
        records_per_fsync=records / max(batches, 1),
        records_per_s=writers * per_writer / min(elapsed),
    )
