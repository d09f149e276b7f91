"""Fitting conversations into a context window, in process: turns, truncation, the error
policy, "what fits" for max_tokens, the retry's refit, and reading context lengths (the
gateway and node end to end are in tests/e2e/test_window.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest
from llama_cpp import Llama
from starlette.datastructures import Headers

from functions.context import ChatContext, Principal
from functions.errors import ContextLengthExceededError, UpstreamError
from functions.lifecycle import Call, current
from functions.settings import Deployment
from functions.window.fit import Window, fit, text_tokens, turns
from functions.window.lengths import ContextLengths, context_of
from functions.window.settings import WindowSettings
from functions.window.steps import make_window, refit
from functions.wire import ChatCompletionRequest
from inference_node.engines.llama_cpp import bundled_smollm2

WORDS = "the quick brown fox jumps over the lazy dog " * 10  # 440 characters


def body(*messages: dict[str, Any], **extra: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "m", "messages": list(messages), **extra})


def conversation(rounds: int) -> list[dict[str, Any]]:
    """A system prompt, then ``rounds`` user/assistant turns, then the question."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "Be brief."}]
    for n in range(rounds):
        messages += [
            {"role": "user", "content": f"question {n}: {WORDS}"},
            {"role": "assistant", "content": f"answer {n}: {WORDS}"},
        ]
    return [*messages, {"role": "user", "content": "And now?"}]


def window(context: int, policy: str = "truncate", reserve: int = 64) -> Window:
    return Window(policy, context, reserve, 1.35)  # type: ignore[arg-type]


SAMPLES = (
    "Hotel costs are capped at 180 euros per night. Meals are reimbursed up to 45 euros.",
    "员工每年享有十五天带薪年假。年假须提前两周申请。",
    "Les employés bénéficient de vingt-cinq jours de congés payés, à prendre avant mai.",
    '{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}',
)


def test_the_estimate_errs_high_against_smollm2s_own_tokenizer() -> None:
    vocab = Llama(model_path=str(bundled_smollm2()), vocab_only=True, verbose=False)
    margin = WindowSettings().safety_margin
    for text in SAMPLES:
        real = len(vocab.tokenize(text.encode(), add_bos=False, special=False))
        assert text_tokens(text) * margin >= real, text


def test_a_turn_keeps_a_tool_call_with_its_result_and_system_messages_belong_to_none() -> None:
    request = body(
        {"role": "system", "content": "s"},
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "assistant", "content": "Sunny."},
        {"role": "developer", "content": "d"},
        {"role": "user", "content": "and tomorrow?"},
    )
    assert turns(request.messages, frozenset()) == [[1, 2, 3, 4]]  # the last turn: never


def test_truncate_drops_the_oldest_turns_and_keeps_system_passages_and_question() -> None:
    passages = {"role": "system", "content": "[1] Travel policy (docs/travel.md)\nHotels: 180."}
    request = body(passages, *conversation(6))
    fitted, done = fit(request, frozenset({0}), window(1024))
    kept = [m.text() for m in fitted.messages]
    assert kept[0] == passages["content"] and kept[1] == "Be brief." and kept[-1] == "And now?"
    assert done.prompt + done.reserve <= 1024
    assert done.dropped[:4] == (1, 2, 3, 4)  # the caller's numbering: the system prompt is 0
    assert done.turns == len(done.dropped) // 2 and "question 5" in kept[-3]
    assert done.decision.startswith(f"truncate:{done.prompt}/1024:dropped={done.turns}:1-")


def test_nothing_is_dropped_when_it_fits_and_max_tokens_becomes_what_fits() -> None:
    request = body(*conversation(1))
    fitted, done = fit(request, frozenset(), window(4096))
    assert fitted.messages == request.messages and done.dropped == ()
    assert fitted.max_tokens == done.max_tokens == 2048  # at most half the context
    small, tight = fit(request, frozenset(), window(512, reserve=300))
    assert small.max_tokens is not None and small.max_tokens >= 256  # the reserve: half of 512
    assert tight.prompt + small.max_tokens <= 512
    asked, _ = fit(body(*conversation(1), max_tokens=7), frozenset(), window(4096))
    assert asked.max_tokens == 7  # the caller's own stays


def test_the_error_policy_refuses_with_context_length_exceeded() -> None:
    with pytest.raises(ContextLengthExceededError) as refused:
        fit(body(*conversation(6)), frozenset(), window(1024, "error"))
    error = refused.value.body()["error"]
    assert refused.value.status_code == 400
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "context_length_exceeded",
        "messages",
    )


def test_a_models_refusal_reads_as_the_gateways_own() -> None:
    relayed = UpstreamError("too long", upstream_status=400, code="context_length_exceeded")
    own = ContextLengthExceededError.of(600, 512)
    fields = ("type", "code", "param")
    assert [relayed.body()["error"][f] for f in fields] == [own.body()["error"][f] for f in fields]
    assert relayed.status_code == own.status_code == 400


def ctx_for(request: ChatCompletionRequest, **extra: Any) -> ChatContext:
    return ChatContext(
        request_id="t",
        headers=Headers({}),
        principal=Principal(key_id="k", tenant="acme"),
        body=request,
        **extra,
    )


def test_the_retry_drops_more_once_and_says_so() -> None:
    request = body(*conversation(6))
    fitted, done = fit(request, frozenset(), window(2048))
    ctx = ctx_for(fitted, window=done)
    refused = UpstreamError("too long", upstream_status=400, code="context_length_exceeded")
    owner = Call(ctx=ctx)
    token = current.set(owner)
    try:
        smaller = refit(ctx, refused)
    finally:
        current.reset(token)
    assert smaller is not None and len(smaller.messages) < len(fitted.messages)
    assert smaller.messages[-1].text() == "And now?" and smaller.messages[0].text() == "Be brief."
    assert owner.decisions["window"].endswith(":retried")
    dropped = owner.decisions["window"].split("dropped=")[1]
    assert dropped.split(":")[1].startswith("1-")  # still the caller's numbering
    again = ctx.evolve(window=dataclasses.replace(done, retried=True))
    assert refit(again, refused) is None  # once only
    other = UpstreamError("no", upstream_status=400, code="invalid_value")
    assert refit(ctx, other) is None
    minimal = ctx_for(body(*conversation(0)), window=window(2048))
    assert refit(minimal, refused) is None  # nothing left to drop: the refusal stands


def test_the_step_uses_the_smallest_known_context_and_the_policy_by_alias_tenant_gateway() -> None:
    small = Deployment(name="a", model="m", api_base="http://x/v1", context_tokens=1024)
    large = Deployment(name="b", model="m", api_base="http://y/v1", context_tokens=8192)
    external = Deployment(name="c", model="m", api_base="http://z/v1", provider="anthropic")
    settings = WindowSettings(tenants={"acme": {"policy": "error"}})  # type: ignore[dict-item]
    lengths = ContextLengths(settings)
    step = make_window(settings, lengths, {"strict": "error", "lenient": "truncate"})
    request = body(*conversation(6))
    with pytest.raises(ContextLengthExceededError):  # the tenant's policy
        asyncio.run(step(ctx_for(request, plan=(large, small, external))))
    done = asyncio.run(step(ctx_for(request, plan=(large, small), alias="lenient")))
    assert done.window is not None and done.window.context == 1024 and done.window.dropped
    unknown = asyncio.run(step(ctx_for(request, plan=(external,))))
    assert unknown.decisions["window"] == "unknown" and unknown.body is request


def test_context_lengths_come_from_the_model_list() -> None:
    listing = {"data": [{"id": "other", "context_length": 9}, {"id": "m", "max_model_len": 4096}]}
    assert context_of(listing, "m") == 4096
    assert context_of({"data": [{"id": "only", "context_length": 2048}]}, "m") == 2048
    for bad in ({"data": [{"id": "m", "context_length": "2048"}]}, {"data": "x"}, [], None):
        assert context_of(bad, "m") is None
    assert context_of({"data": [{"id": "m", "context_length": True}]}, "m") is None

    asked: list[httpx.Request] = []

    def models(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(200, json={"data": [{"id": "M", "context_length": 512}]})

    node = Deployment(
        name="n", model="m", api_base="http://node/v1", upstream_model="M", api_key="sk-node"
    )

    async def twice() -> list[int | None]:
        # a mock transport: no node to reach in a unit test (the e2e tests use a real one)
        lengths = ContextLengths(
            WindowSettings(), httpx.AsyncClient(transport=httpx.MockTransport(models))
        )
        found = await asyncio.gather(lengths.of(node), lengths.of(node))
        found.append(await lengths.of(node))
        await lengths.aclose()
        return found

    assert asyncio.run(twice()) == [512, 512, 512]
    assert len(asked) == 1 and asked[0].url == "http://node/v1/models"
    assert asked[0].headers["authorization"] == "Bearer sk-node"  # the deployment's own key


def test_the_rate_limit_charges_what_the_caller_asked_not_the_room_filled_in() -> None:
    """A large context fills in a large max_tokens (room, not an ask): the limiter's
    estimate stays the one for a request without max_tokens, so a small tpm still admits."""
    from functions.ratelimit.limiter import RateLimiter
    from functions.ratelimit.settings import Limits, RateLimitSettings
    from functions.ratelimit.steps import make_rate_limit

    large = Deployment(name="a", model="m", api_base="http://x/v1", context_tokens=32768)
    settings = WindowSettings()
    step = make_window(settings, ContextLengths(settings), {})
    fitted = asyncio.run(step(ctx_for(body({"role": "user", "content": "2+2?"}), plan=(large,))))
    assert fitted.body.max_tokens == 16384  # what fits, up to half the context
    limits = RateLimitSettings(key_limits=Limits(tpm=10_000))
    limiter = RateLimiter.from_settings(limits, Path("/nonexistent"))  # memory: no file
    admitted = asyncio.run(make_rate_limit(limiter)(fitted))
    assert admitted.decisions["rate_limit"] == "admitted"
    assert admitted.body.max_tokens == 16384  # the model still gets the room


def test_a_model_list_without_a_length_is_an_answer_kept_as_long_as_a_length() -> None:
    """An upstream whose /models names no context length (a hosted API) is asked once per
    lookup_ttl_s, not every lookup_retry_s: chats do not keep paying the round trip."""
    asked: list[httpx.Request] = []

    def models(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(200, json={"data": [{"id": "M"}, {"id": "N"}]})

    node = Deployment(name="n", model="m", api_base="http://api/v1", upstream_model="M")

    async def thrice() -> list[int | None]:
        settings = WindowSettings(lookup_retry_s=0.001)  # a failure: asked again at once
        client = httpx.AsyncClient(transport=httpx.MockTransport(models))  # no API to reach
        lengths = ContextLengths(settings, client)
        found = []
        for _ in range(3):
            found.append(await lengths.of(node))
            await asyncio.sleep(0.01)  # past the retry delay, within the ttl
        await lengths.aclose()
        return found

    assert asyncio.run(thrice()) == [None, None, None]
    assert len(asked) == 1
