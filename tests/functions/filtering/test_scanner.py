"""Large scans run in a worker process and give what an inline scan gives."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx

from functions.filtering import ContentFilter, FilterPolicy, FilterSet
from functions.filtering.scanner import Scanner
from functions.wire import ChatCompletionRequest
from tests.conftest import API_KEY, gateway_env, start

PHONE = "13812345678"


def test_a_large_request_is_masked_in_a_worker_process_as_inline() -> None:
    text = f"call {PHONE} " + "x" * 40_000
    body = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": text}]}
    )
    scanner = Scanner(FilterSet(FilterPolicy()), inline_bytes=1_000)

    async def both() -> tuple[object, object, object]:
        big = await scanner.mask(len(text), "default", body, frozenset())
        small = await scanner.mask(10, "default", body, frozenset())
        scanned = await scanner.scan("default", text, "input")
        return big, small, scanned

    try:
        big, small, scanned = asyncio.run(both())
        assert scanner._pool is not None
        (worker,) = scanner._pool._processes  # type: ignore[union-attr]
        assert worker != os.getpid()
    finally:
        scanner.close()
    inline = ContentFilter().mask_request(body)
    assert big.request == small.request == inline.request  # type: ignore[attr-defined]
    assert big.vault.resolve("<PHONE_1>") == PHONE  # type: ignore[attr-defined]
    assert scanned.masked_text.startswith("call <PHONE_1> ")  # type: ignore[attr-defined]


def test_the_worker_reports_ready_once_started() -> None:
    scanner = Scanner(FilterSet(FilterPolicy()))
    assert not scanner.ready
    scanner.start()
    try:
        assert scanner._warm is not None
        assert scanner._warm.result(timeout=120) is True
        assert scanner.ready
    finally:
        scanner.close()


def test_the_gateway_starts_its_worker_after_its_first_caller_not_beside_it() -> None:
    """A worker's start costs as much CPU as the gateway's own: a scaled-to-zero
    gateway's first caller should not share a small container's core with it."""
    scanner = Scanner(FilterSet(FilterPolicy()))

    async def delayed() -> tuple[bool, bool]:
        scanner.start_later(0.3)
        await asyncio.sleep(0.1)
        early = scanner._pool is not None
        await asyncio.sleep(0.4)
        return early, scanner._warm is not None

    try:
        early, started = asyncio.run(delayed())
        assert not early
        assert started
        assert scanner._warm is not None and scanner._warm.result(timeout=120) is True
    finally:
        scanner.close()


def test_a_large_input_before_the_delayed_start_starts_the_worker_itself() -> None:
    text = f"call {PHONE} " + "x" * 40_000
    scanner = Scanner(FilterSet(FilterPolicy()), inline_bytes=1_000)

    async def early() -> object:
        scanner.start_later(60)
        return await scanner.scan("default", text, "input")

    try:
        scanned = asyncio.run(early())
        assert scanned.masked_text.startswith("call <PHONE_1> ")  # type: ignore[attr-defined]
    finally:
        scanner.close()  # and the timer with it


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_worker_dies_with_the_gateway_even_when_killed(log_dir: Path) -> None:
    """A leftover worker would hold the gateway's stdout open and its memory for ever."""
    gateway = start("gateway", gateway_env([]), log_dir)
    try:
        auth = {"authorization": f"Bearer {API_KEY}"}
        deadline = time.monotonic() + 60
        while not httpx.get(f"{gateway.url}/health", headers=auth).json()["scanner"]["ready"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        children = _children(gateway.proc.pid)
        assert children
        gateway.proc.send_signal(signal.SIGKILL)
        gateway.proc.wait()
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in children):
            assert time.monotonic() < deadline, [p for p in children if _alive(p)]
            time.sleep(0.1)
    finally:
        gateway.stop()
