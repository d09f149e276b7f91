"""Large scans run in a worker process and give what an inline scan gives."""

from __future__ import annotations

import asyncio
import os

from functions.filtering import ContentFilter, FilterPolicy, FilterSet
from functions.filtering.scanner import Scanner
from functions.wire import ChatCompletionRequest

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
