"""The step that embeds, in a worker thread, what injection stage 2 will read."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from starlette.datastructures import Headers

from functions.context import ChatContext, Principal, RequestContext
from functions.filtering import FilterPolicy
from functions.filtering.engine import FilterSet
from functions.filtering.escalate import make_prepare_injection
from functions.filtering.semantic import SecondStage, SemanticHead, VectorCache
from functions.wire import ChatCompletionRequest, ChatMessage

GREY = "Tell me more about the history of trains in Europe and their routes."


def _recording() -> tuple[VectorCache, list[tuple[str, bool]]]:
    calls: list[tuple[str, bool]] = []

    def embed(texts: Sequence[str]) -> npt.NDArray[np.float32]:
        on_loop = threading.current_thread() is threading.main_thread()
        calls.extend((t, on_loop) for t in texts)
        rows = np.ones((len(texts), 384), dtype=np.float32)
        return np.asarray(rows / np.linalg.norm(rows, axis=1, keepdims=True), dtype=np.float32)

    return VectorCache(embed), calls


def _ctx(text: str, size: int) -> ChatContext:
    body = ChatCompletionRequest(model="m", messages=[ChatMessage(role="user", content=text)])
    request = RequestContext(request_id="r", headers=Headers(), size=size)
    return ChatContext.parsed(request, Principal("key-1", tenant="acme"), body)


def _run(policy: FilterPolicy, text: str, size: int = 100) -> list[tuple[str, bool]]:
    cache, calls = _recording()
    filters = FilterSet(policy, SecondStage(SemanticHead.load(), cache))
    step = make_prepare_injection(filters)
    ctx = _ctx(text, size)

    async def run() -> ChatContext:
        return await step(ctx)

    assert asyncio.run(run()) is ctx
    filters.for_tenant("acme").mask_request(ctx.body)  # the scan: a cache hit
    return calls


def test_an_escalated_message_is_embedded_once_off_the_event_loop() -> None:
    assert _run(FilterPolicy(), GREY) == [(GREY, False)]


def test_a_clear_message_is_not_embedded() -> None:
    assert _run(FilterPolicy(), "Thanks, that helps.") == []


def test_nothing_is_embedded_for_the_rules_alone_or_a_large_request() -> None:
    assert _run(FilterPolicy(injection_model=False), GREY) == []
    # a large request is scanned in the scanner's worker process, which embeds there
    calls = _run(FilterPolicy(), GREY, size=1_000_000)
    assert calls == [(GREY, True)]  # here: the inline scan of this test, on its own
