"""The answer chain and the lifecycle's bookkeeping, in process (the gateway-level
behaviour is in test_lifecycle.py and the cache tests)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.datastructures import Headers

from functions.answering import AnswerChain, Cited
from functions.audit.errors import AuditUnavailableError
from functions.audit.local import RequestAudit
from functions.context import ChatContext, Principal
from functions.errors import AuthenticationError
from functions.filtering.answer import AnswerFilter
from functions.filtering.engine import ContentFilter
from functions.knowledge.prompting import sources_block
from functions.lifecycle import Call, Lifecycle, run_steps
from functions.metrics import Metrics
from functions.wire import ChatCompletionRequest

PHONE = "13812345678"


def request(text: str) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": text}]}
    )


def chunk(text: str = "", finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
    return {"id": "c", "choices": [choice], **extra}


def filters(text: str) -> tuple[AnswerFilter, AnswerFilter, AnswerFilter]:
    cf = ContentFilter()
    conversation = cf.mask_request(request(text))
    return (
        AnswerFilter(cf, conversation),
        AnswerFilter(cf, conversation, "guard"),
        AnswerFilter(cf, conversation, "restore"),
    )


def test_usage_is_counted_and_dropped_when_the_client_did_not_ask() -> None:
    counted: list[dict[str, Any]] = []
    chain = AnswerChain(whole=False, answer=None, wants_usage=False, account=counted.append)
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert chain({"id": "c", "choices": [], "usage": usage}) == []
    assert counted == [usage] and chain.usage == usage
    (kept,) = chain(chunk("hi", usage=usage))
    assert "usage" not in kept
    asked = AnswerChain(whole=False, answer=None, wants_usage=True)
    assert asked({"id": "c", "choices": [], "usage": usage}) != []


CITED = ({"index": 1, "source": "docs/a.md", "title": "Leave", "location": "", "score": 1.0},)
BLOCK = "\n\n---\nSources:\n[1] Leave (docs/a.md)"


def test_citations_ride_on_the_first_chunk_only_and_capture_sees_what_was_sent() -> None:
    chain = AnswerChain(
        whole=False, answer=None, citations=Cited(CITED, "field", None), capture=True
    )
    (first,), (second,) = chain(chunk("Hel")), chain(chunk("lo", "stop"))
    assert first["enclave"] == {"citations": list(CITED)}
    assert "enclave" not in second
    assert chain.emitted == ["Hel", "lo"] and chain.transparent


def test_a_streams_sources_block_is_a_content_chunk_just_before_the_finish() -> None:
    chain = AnswerChain(
        whole=False, answer=None, citations=Cited(CITED, "both", None), capture=True
    )
    sent = [out for c in (chunk("Hel"), chunk("lo", "stop")) for out in chain(c)]
    assert [c["choices"][0]["delta"].get("content") for c in sent] == ["Hel", "lo" + BLOCK, None]
    assert [c["choices"][0]["finish_reason"] for c in sent] == [None, None, "stop"]
    assert "enclave" in sent[0] and not chain.transparent
    assert "".join(chain.emitted or []) == "Hello" + BLOCK
    markdown = AnswerChain(whole=False, answer=None, citations=Cited(CITED, "markdown", None))
    only = [out for out in markdown(chunk("Hi", "length"))]
    assert "enclave" not in only[0] and only[0]["choices"][0]["delta"]["content"] == "Hi" + BLOCK


def test_no_sources_after_a_tool_call_or_a_filtered_answer() -> None:
    call = {"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}}
    chain = AnswerChain(whole=False, answer=None, citations=Cited(CITED, "markdown", None))
    calling = {"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}
    sent = chain(calling) + chain(chunk(finish="stop")) + chain(chunk(finish="content_filter"))
    assert BLOCK not in str(sent)


def test_the_cache_keeps_the_answer_without_sources_and_the_sources_are_guarded() -> None:
    _, guard, restore = filters(f"call {PHONE}")
    cf = ContentFilter()
    titled = ({**CITED[0], "title": "Call ops at 13987654321"},)
    own = AnswerFilter(cf, cf.mask_request(request(f"call {PHONE}")))
    cited = Cited(titled, "both", own)
    chain = AnswerChain(whole=False, answer=restore, keep=guard, citations=cited)
    sent = [out for c in (chunk("Calling <PHONE_1>"), chunk(finish="stop")) for out in chain(c)]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in sent)
    assert text.startswith(f"Calling {PHONE}") and "13987654321" not in text
    assert "REDACTED:PHONE" in text and "13987654321" not in str(sent[0]["enclave"])
    kept = chain.kept()
    assert kept is not None and kept["choices"][0]["message"]["content"] == "Calling <PHONE_1>"


def test_a_whole_answer_gets_the_sources_appended() -> None:
    answer = {
        "id": "c",
        "choices": [{"index": 0, "message": {"content": "Yes [1]."}, "finish_reason": "stop"}],
    }
    chain = AnswerChain(whole=True, answer=None, citations=Cited(CITED, "both", None))
    (out,) = chain(answer)
    assert out["choices"][0]["message"]["content"] == "Yes [1]." + BLOCK
    assert out["enclave"]["citations"][0]["source"] == "docs/a.md"


def test_a_sources_line_cannot_become_a_link_or_an_image() -> None:
    evil = {**CITED[0], "title": "![x](https://evil.example/p?q=1)\n# Heading"}
    block = sources_block([evil])
    assert "![x](" not in block and "\\!\\[x\\]\\(https" in block
    assert block.count("\n") == BLOCK.count("\n")  # one line per source


def test_a_stream_keeps_the_guarded_answer_and_sends_the_restored_one() -> None:
    _, guard, restore = filters(f"call {PHONE}")
    chain = AnswerChain(whole=False, answer=restore, keep=guard, capture=True)
    parts = (chunk("Calling <PH"), chunk("ONE_1> now"), chunk(finish="stop"))
    sent = [out for c in parts for out in chain(c)]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in sent if c["choices"])
    assert text == f"Calling {PHONE} now"
    kept = chain.kept()
    assert kept is not None and kept["choices"][0]["message"]["content"] == "Calling <PHONE_1> now"
    assert PHONE not in str(kept) and not chain.transparent


def test_a_whole_answer_is_one_chunk_through_the_same_chain() -> None:
    _, guard, restore = filters(f"call {PHONE}")
    answer = {
        "id": "c",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "<PHONE_1>"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    chain = AnswerChain(whole=True, answer=restore, keep=guard, wants_usage=False, capture=True)
    (out,) = chain(answer)
    assert out["choices"][0]["message"]["content"] == PHONE
    assert "usage" in out  # a whole answer keeps its usage
    kept = chain.kept()
    assert kept is not None and kept["choices"][0]["message"]["content"] == "<PHONE_1>"
    assert chain.emitted == [PHONE]


CTX = ChatContext(
    request_id="t1",
    headers=Headers({}),
    principal=Principal(key_id="k1"),
    body=request("hello"),
    decisions={"auth": "key"},
)


class FailingAudit(RequestAudit):
    """An audit log that cannot write and fails closed (a test double)."""

    def __init__(self) -> None:
        super().__init__(None)

    async def request_durable(self, ctx: Any, **fields: Any) -> None:
        raise AuditUnavailableError("write_failed: OSError")


def sample(metrics: Metrics, name: str, labels: dict[str, str]) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_a_refusing_step_leaves_its_verdict_and_the_steps_before_it() -> None:
    async def ok(ctx: ChatContext) -> ChatContext:
        return ctx.decided("route", "d1")

    async def refuse(ctx: ChatContext) -> ChatContext:
        raise AuthenticationError("no", reason="unknown")

    owner = Call(ctx=CTX)
    with pytest.raises(AuthenticationError):
        asyncio.run(run_steps((("route", ok), ("rate_limit", refuse)), CTX, owner))
    assert owner.decisions["route"] == "d1"
    assert owner.decisions["rate_limit"].startswith("refused:")


def test_an_outcome_is_recorded_once_and_a_failed_closed_record_becomes_the_503() -> None:
    metrics = Metrics("gateway")
    lifecycle = Lifecycle(metrics, FailingAudit())
    owner = Call(kind="chat", route="/v1/chat/completions", ctx=CTX, model="m")
    with pytest.raises(AuditUnavailableError):
        asyncio.run(lifecycle.close(owner, 200, "POST", "/v1/chat/completions"))
    asyncio.run(lifecycle.close(owner, 200, "POST", "/v1/chat/completions"))  # closed: nothing
    labels = {"route": "/v1/chat/completions", "model": "m", "deployment": ""}
    assert sample(metrics, "enclave_gateway_requests_total", {**labels, "status": "503"}) == 1
    assert sample(metrics, "enclave_gateway_requests_total", {**labels, "status": "200"}) == 0


def test_a_fixed_format_or_a_frontends_task_gets_the_citations_field_only() -> None:
    """A Sources block appended to JSON mode, a JSON schema, or a title request would
    break what the caller parses: those answers cite in the field alone."""
    from functions.delivery import citing as _citing

    def ctx(**extra: Any) -> ChatContext:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}
        return ChatContext(
            request_id="r",
            headers=Headers(),
            principal=Principal(key_id="k", tenant="acme"),
            body=ChatCompletionRequest.model_validate(body),
            citing="both",
        )

    assert _citing(ctx()) == "both"
    assert _citing(ctx(response_format={"type": "text"})) == "both"
    assert _citing(ctx(response_format={"type": "json_object"})) == "field"
    schema = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}
    assert _citing(ctx(response_format=schema)) == "field"
    assert _citing(ctx().evolve(priority="background")) == "field"
    task = ctx().evolve(decisions={"priority": "interactive (openwebui:queries)"})
    assert _citing(task) == "field"
