"""The step that embeds, in a worker thread, what injection stage 2 will read, and the
same for ``POST /v1/filter``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from starlette.datastructures import Headers

from functions import scope
from functions.context import ChatContext, Principal, RequestContext
from functions.filtering import FilterPolicy, escalate, two_stage
from functions.filtering.engine import FilterSet
from functions.filtering.escalate import make_prepare_injection
from functions.filtering.injection import StageOne
from functions.filtering.semantic import SecondStage, SemanticHead, VectorCache
from functions.gateway import create_app
from functions.settings import GatewaySettings, Settings
from functions.wire import ChatCompletionRequest, ChatMessage

T = TypeVar("T")
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


def test_an_unprepared_message_is_not_embedded_on_the_event_loop() -> None:
    """A vector evicted from the cache (or never prepared) between the step and the
    scan: on the event loop, stage 1's score stands rather than a 100 ms embedding."""
    cache, calls = _recording()
    filters = FilterSet(FilterPolicy(), SecondStage(SemanticHead.load(), cache))
    cf = filters.for_tenant("acme")

    async def on_loop() -> float:
        return cf.injection(GREY).score

    alone = asyncio.run(on_loop())
    assert calls == []
    assert alone == cf.two_stage.stages(GREY)[0].score.score  # stage 1's
    off_loop = cf.injection(GREY).score  # no loop in this thread: embedded here
    assert calls == [(GREY, True)] and off_loop != alone


def test_a_clear_message_is_not_embedded() -> None:
    assert _run(FilterPolicy(), "Thanks, that helps.") == []


def _hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of what the step sends to a worker thread."""
    hops: list[str] = []
    real = asyncio.to_thread

    async def recording(func: Callable[..., T], /, *args: object) -> T:
        hops.append(getattr(func, "__name__", repr(func)))
        return await real(func, *args)

    monkeypatch.setattr(asyncio, "to_thread", recording)
    return hops


def test_a_message_stage_one_is_sure_of_costs_no_thread_hop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Most requests escalate nothing: stage 1 asks on the event loop, and only what it
    escalates goes to a thread (a hop each was a thirtieth of a plain request's CPU)."""
    hops = _hops(monkeypatch)
    assert _run(FilterPolicy(), "Thanks, that helps.") == []
    assert hops == []
    assert _run(FilterPolicy(), GREY) == [(GREY, False)]
    assert hops == ["embed_for_stage_two"]


def test_a_longer_request_asks_stage_one_in_the_thread_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hops = _hops(monkeypatch)
    assert _run(FilterPolicy(), GREY, size=escalate.LOOP_BYTES + 1) == [(GREY, False)]
    assert hops == ["prepare_request"]


def test_a_text_embedded_before_is_not_embedded_again_nor_sent_to_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache, calls = _recording()
    filters = FilterSet(FilterPolicy(), SecondStage(SemanticHead.load(), cache))
    step = make_prepare_injection(filters)

    async def twice() -> None:
        await step(_ctx(GREY, 100))
        await step(_ctx(GREY, 100))  # the same text again (the same tenant): cached

    hops = _hops(monkeypatch)
    asyncio.run(twice())
    assert calls == [(GREY, False)]
    assert hops == ["embed_for_stage_two"]


def test_stage_one_reads_a_message_once_per_request_and_per_tenant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The step asks stage 1 what to embed, the scan asks it for the score: one reading.
    Another tenant sending the same text gets a reading of its own (no timing across
    tenants, I6)."""
    readings: list[str] = []
    real = two_stage.stage_one

    def counting(text: str, folded: str | None = None) -> StageOne:
        readings.append(text)
        return real(text, folded)

    monkeypatch.setattr(two_stage, "stage_one", counting)
    text = "Could you explain how our expense approval workflow handles receipts?"
    filters = FilterSet(FilterPolicy(), SecondStage(SemanticHead.load(), _recording()[0]))
    step = make_prepare_injection(filters)

    async def request(tenant: str) -> None:
        scope.tenant.set(tenant)  # as authentication does
        ctx = _ctx(text, 100)
        await step(ctx)
        filters.for_tenant(tenant).mask_request(ctx.body)

    asyncio.run(request("acme"))
    assert readings == [text]
    asyncio.run(request("globex"))
    assert readings == [text, text]


def test_nothing_is_embedded_for_the_rules_alone_or_a_large_request() -> None:
    assert _run(FilterPolicy(injection_model=False), GREY) == []
    # a large request is scanned in the scanner's worker process, which embeds there
    calls = _run(FilterPolicy(), GREY, size=1_000_000)
    assert calls == [(GREY, True)]  # here: the inline scan of this test, on its own


def test_the_filter_url_runs_stage_two_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``POST /v1/filter`` reads an input text with both stages, as the gateway's chat
    steps do, and embeds it in a worker thread, not on the event loop."""
    cache, calls = _recording()
    stage = SecondStage(SemanticHead.load(), cache)
    monkeypatch.setattr(SecondStage, "default", classmethod(lambda cls: stage))
    key = "sk-test-" + "f" * 24
    app = create_app(Settings(gateway=GatewaySettings(api_keys=[key])))

    async def post(text: str, direction: str) -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                return await client.post(
                    "/v1/filter",
                    json={"text": text, "direction": direction},
                    headers={"authorization": f"Bearer {key}"},
                )

    answer = asyncio.run(post(GREY, "input"))
    assert answer.status_code == 200, answer.text
    assert calls == [(GREY, False)]
    token = scope.tenant.set("default")  # the request's tenant: its cached vector
    try:
        expected = FilterSet(FilterPolicy(), stage).for_tenant("default").scan(GREY)
    finally:
        scope.tenant.reset(token)
    assert answer.json()["injection_score"] == expected.injection_score
    assert asyncio.run(post(GREY, "output")).status_code == 200
    assert calls == [(GREY, False)]  # an answer is not scored for injection


def test_retrieved_passages_are_embedded_in_one_batch() -> None:
    """A request's passages are screened together: those stage 1 escalates cost one
    embedding call, not one each, and the scans then find their vectors."""
    batches: list[list[str]] = []

    def embed(texts: Sequence[str]) -> npt.NDArray[np.float32]:
        batches.append(list(texts))
        rows = np.ones((len(texts), 384), dtype=np.float32)
        return np.asarray(rows / np.linalg.norm(rows, axis=1, keepdims=True), dtype=np.float32)

    stage = SecondStage(SemanticHead.load(), VectorCache(embed))
    cf = FilterSet(FilterPolicy(), stage).for_tenant("acme")
    passages = [
        GREY,
        GREY + " Which of those routes still run today?",
        "The Rhine flows into the North Sea near Rotterdam.",  # stage 1 is sure of it
    ]
    verdicts = cf.carries_instructions(passages)
    assert len(verdicts) == 3 and verdicts[2] is False
    assert batches == [passages[:2]]


def test_an_earlier_turn_the_scan_memo_has_scored_is_not_prepared_again() -> None:
    """A frontend resends the whole conversation each turn: a message whose injection
    score the scan memo remembers costs neither stage 1 nor an embedding again."""
    cache, calls = _recording()
    cf = FilterSet(FilterPolicy(), SecondStage(SemanticHead.load(), cache)).for_tenant("acme")
    body = ChatCompletionRequest(model="m", messages=[ChatMessage(role="user", content=GREY)])
    assert cf.prepare_request(body, tenant="acme") == 1
    cf.mask_request(body, tenant="acme")  # the scan: remembers the score
    cache.clear()  # even with its vector gone from the vector cache
    assert cf.prepare_request(body, tenant="acme") == 0
    assert cf.prepare_request(body, tenant="other") == 1  # another tenant's memo is its own
    assert [text for text, _ in calls] == [GREY, GREY]
