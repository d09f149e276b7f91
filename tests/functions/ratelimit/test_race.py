"""The race: two OS processes hammer one key's bucket (50 RPM) through a shared store.

Each process acquires as fast as it can for ~1.5 s. A token bucket may grant at
most ``capacity + rate * elapsed`` in that time, where ``elapsed`` runs from the
first clock reading to the last of either process; with a frozen clock the bound
is exactly the capacity, 50. Any lost update or check-then-act race would let
through more.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

RPM = 50
SECONDS = 1.5
MIN_CALLS = 200

WORKER = r"""
import asyncio, json, sys, time
from pathlib import Path

from functions.ratelimit import BucketRequest, FileStore
from functions.ratelimit.redis import RedisStore

backend, target, prefix, frozen = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
seconds, min_calls, rpm = float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
bucket = BucketRequest("race", capacity=rpm, refill_per_second=rpm / 60, cost=1)


async def main() -> None:
    store = FileStore(Path(target)) if backend == "file" else RedisStore(target, prefix=prefix)
    await store.charge([BucketRequest("warm-up", 1, 1, 0)], time.time())  # connect first
    print("ready", flush=True)
    sys.stdin.readline()
    admitted = calls = 0
    first = time.time()
    start = time.monotonic()
    while calls < min_calls or time.monotonic() - start < seconds:
        now = 1_000_000.0 if frozen else time.time()
        decision = await store.acquire([bucket], now)
        calls += 1
        admitted += decision.allowed
    last = time.time()
    await store.aclose()
    print(json.dumps({"admitted": admitted, "calls": calls, "first": first, "last": last}))


asyncio.run(main())
"""


def race(backend: str, target: str, frozen: bool) -> list[dict[str, Any]]:
    """Start two workers, release them together, return what each reports."""
    args = [backend, target, f"race:{uuid.uuid4().hex}:", "1" if frozen else "0"]
    command = [sys.executable, "-c", WORKER, *args, str(SECONDS), str(MIN_CALLS), str(RPM)]
    procs = [
        subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=30)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert [proc.returncode for proc in procs] == [0, 0]
    return [json.loads(out.strip().splitlines()[-1]) for out in outputs]


@pytest.fixture(params=["file", "redis"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "file":
        return "file", str(tmp_path / "ratelimit.sqlite3")
    return "redis", str(request.getfixturevalue("redis_url"))


@pytest.mark.parametrize("frozen", [True, False], ids=["frozen-clock", "real-clock"])
def test_two_processes_never_exceed_the_limit(target: tuple[str, str], frozen: bool) -> None:
    results = race(*target, frozen=frozen)
    admitted = sum(r["admitted"] for r in results)
    assert all(r["calls"] >= MIN_CALLS for r in results)
    # the two bursts overlapped: each started before the other finished
    assert results[0]["first"] < results[1]["last"] and results[1]["first"] < results[0]["last"]
    if frozen:
        bound = RPM
        assert admitted == RPM
    else:
        elapsed = max(r["last"] for r in results) - min(r["first"] for r in results)
        bound = math.floor(RPM + RPM / 60 * elapsed + 1e-6)
        assert RPM <= admitted <= bound
    calls = [r["calls"] for r in results]
    print(f"\nrace {target[0]} frozen={frozen}: admitted {admitted} (bound {bound}), calls {calls}")
