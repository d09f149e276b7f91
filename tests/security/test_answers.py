"""I3 and the answer side: every text an answer carries is guarded and restored, and a
placeholder resolves only to a value the caller itself sent in this request.

The recording upstream answers like a real model: tool calls whose JSON arguments carry
placeholders, refusals, reasoning, several choices, two characters a chunk (so
placeholders and multi-byte characters are split across chunks).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai import OpenAI

from tests.conftest import API_KEY, Server
from tests.openapi import validate
from tests.security.conftest import Recorder

PHONE, ID_CARD, EMAIL = "13812345678", "11010519491231002X", "zhang.wei@example.cn"


@pytest.fixture
def sdk(rec_gateway: Server) -> OpenAI:
    return OpenAI(base_url=f"{rec_gateway.url}/v1", api_key=API_KEY, max_retries=0)


def ask(sdk: OpenAI, content: str, stream: bool, **extra: Any) -> list[dict[str, Any]]:
    """The answer's messages, one per choice, assembled from the stream if streamed."""
    messages = [{"role": "user", "content": content}]
    system = extra.pop("system", None)
    if system:
        messages.insert(0, {"role": "system", "content": system})
    if not stream:
        raw = sdk.chat.completions.with_raw_response.create(
            model="relay", messages=messages, **extra
        )
        answer = raw.http_response.json()
        validate("CreateChatCompletionResponse", answer)
        return [c["message"] for c in answer["choices"]]
    found: dict[int, dict[str, Any]] = {}
    for chunk in sdk.chat.completions.create(
        model="relay", messages=messages, stream=True, **extra
    ):
        for choice in chunk.choices:
            message = found.setdefault(choice.index, {"tool_calls": {}})
            delta = choice.delta.model_dump(exclude_none=True)
            for field in ("content", "refusal", "reasoning_content"):
                if delta.get(field):
                    message[field] = message.get(field, "") + delta[field]
            for call in delta.get("tool_calls") or []:
                entry = message["tool_calls"].setdefault(call["index"], {"arguments": ""})
                entry["arguments"] += (call.get("function") or {}).get("arguments") or ""
    for message in found.values():
        message["tool_calls"] = [
            {"function": v} for _, v in sorted(message["tool_calls"].items())
        ] or None
    return [found[i] for i in sorted(found)]


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_arguments_are_restored_as_json(
    stream: bool, sdk: OpenAI, rec_upstream: Recorder
) -> None:
    rec_upstream.clear()
    (message,) = ask(sdk, f"TOOL call {PHONE} or write to {EMAIL}", stream)
    assert PHONE not in json.dumps(rec_upstream.bodies())
    arguments = json.loads(message["tool_calls"][0]["function"]["arguments"])
    assert arguments["values"] == [PHONE, EMAIL]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("field", ["REFUSE", "REASON"])
def test_refusal_and_reasoning_are_restored(stream: bool, field: str, sdk: OpenAI) -> None:
    (message,) = ask(sdk, f"{field} 请致电 {PHONE} 联系张伟", stream)
    text = message["refusal"] if field == "REFUSE" else message["reasoning_content"]
    assert text == f"请致电 {PHONE} 联系张伟"


@pytest.mark.parametrize("stream", [False, True])
def test_every_choice_is_restored(stream: bool, sdk: OpenAI) -> None:
    messages = ask(sdk, f"ECHO 电话 {PHONE}。", stream, n=3)
    assert [m["content"] for m in messages] == [f"电话 {PHONE}。"] * 3


@pytest.mark.parametrize("stream", [False, True])
def test_operator_values_are_never_restored(stream: bool, sdk: OpenAI) -> None:
    """The system prompt's ID number is masked on the way out and stays a placeholder on
    the way back; the caller's own phone number comes back."""
    system = f"Escalations go to the officer with ID {ID_CARD}."
    (message,) = ask(sdk, f"ALL my number is {PHONE}", stream, system=system)
    assert PHONE in message["content"]
    assert ID_CARD not in message["content"]
    assert "<ID_CARD_1>" in message["content"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_placeholder_the_caller_typed_is_not_resolved(stream: bool, sdk: OpenAI) -> None:
    (message,) = ask(sdk, f"ECHO <PHONE_1> and <PHONE_2>, mine is {PHONE}", stream)
    content = message["content"]
    assert content.startswith("<PHONE_1> and <PHONE_2>, mine is ")
    assert content.endswith(PHONE)


def test_a_burst_of_chunks_reaches_the_client_merged_and_restored(
    sdk: OpenAI, rec_upstream: Recorder
) -> None:
    """A whole answer that arrives in one read (a fast model, a gateway that fell behind)
    is relayed in fewer, longer chunks: each chunk costs the output guard a scan. Its
    text is the same, every placeholder split across the chunks is restored, and the
    upstream's usage is passed on."""
    text = f"Call {PHONE}, 身份证 {ID_CARD}, or write to {EMAIL}. 谢谢！"
    chunks = list(
        sdk.chat.completions.create(
            model="relay",
            messages=[{"role": "user", "content": f"BURST {text}"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    sent = rec_upstream.last()["messages"][-1]["content"].removeprefix("BURST ")
    assert PHONE not in sent and "<PHONE_1>" in sent  # the model saw placeholders only
    with_text = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(c.choices[0].delta.content or "" for c in with_text) == text
    upstream_chunks = -(-len(sent) // 2)  # two characters a chunk
    # one read on loopback, as a rule; relayed one by one, the guard would release 14 times
    assert len(with_text) <= upstream_chunks // 10
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 10
    assert chunks[-2].choices[0].finish_reason == "stop"
