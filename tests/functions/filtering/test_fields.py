"""Every text field of a request masked (fields.py) and every text of an answer guarded and
restored (answer.py), with hand-made requests and answers."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from functions.filtering import ContentFilter, FilterPolicy
from functions.filtering.answer import AnswerFilter
from functions.filtering.fields import SEP
from functions.filtering.masking import Vault
from functions.filtering.results import ContentBlockedError
from functions.wire import ChatCompletionRequest

PHONE, ID_CARD = "13812345678", "11010519491231002X"


def request(**fields: Any) -> ChatCompletionRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    return ChatCompletionRequest.model_validate(body)


def test_arguments_are_masked_value_by_value_and_stay_json() -> None:
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "f", "arguments": json.dumps({"a": [PHONE, {"b": ID_CARD}]})},
    }
    body = request(messages=[{"role": "assistant", "tool_calls": [call]}])
    masked = ContentFilter().mask_request(body)
    arguments = masked.request.messages[0].tool_calls[0].function.arguments  # type: ignore[index]
    assert json.loads(arguments) == {"a": ["<PHONE_1>", {"b": "<ID_CARD_1>"}]}
    assert masked.result.level.value == "confidential"


def test_arguments_that_are_not_json_are_masked_as_text() -> None:
    call = {"id": "c1", "function": {"name": "f", "arguments": f"call {PHONE}"}, "type": "function"}
    body = request(messages=[{"role": "assistant", "tool_calls": [call]}])
    masked = ContentFilter().mask_request(body)
    assert masked.request.messages[0].tool_calls[0].function.arguments == "call <PHONE_1>"  # type: ignore[index]


def test_tool_definitions_are_scanned_in_one_batch_and_split_back() -> None:
    tools = [
        {
            "type": "function",
            "function": {"name": f"t{i}", "description": f"tool {i} for {PHONE}"},
        }
        for i in range(40)
    ]
    scans: list[str] = []
    cf = ContentFilter()
    original = cf.scan

    def counting(text: str, *args: Any, **kwargs: Any) -> Any:
        scans.append(text)
        return original(text, *args, **kwargs)

    cf.scan = counting  # type: ignore[method-assign]
    masked = cf.mask_request(request(tools=tools))
    assert [t.function.description for t in masked.request.tools or []] == [
        f"tool {i} for <PHONE_1>" for i in range(40)
    ]
    assert len(scans) == 2  # the user message, then all forty descriptions at once


def test_a_string_holding_the_separator_is_scanned_alone() -> None:
    tools = [
        {"type": "function", "function": {"name": "a", "description": f"x{SEP}{PHONE}"}},
        {"type": "function", "function": {"name": "b", "description": PHONE}},
    ]
    masked = ContentFilter().mask_request(request(tools=tools))
    assert [t.function.description for t in masked.request.tools or []] == [
        f"x{SEP}<PHONE_1>",
        "<PHONE_1>",
    ]


def test_unreadable_parts_are_counted() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:,"}}
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    body = request(
        messages=[{"role": "user", "content": [{"type": "text", "text": "x"}, image, audio]}]
    )
    assert ContentFilter().mask_request(body).unreadable == 2


def test_values_from_the_system_prompt_and_passages_are_not_restorable() -> None:
    body = request(
        messages=[
            {"role": "system", "content": f"retrieved: call {ID_CARD}"},
            {"role": "system", "content": f"operator: {PHONE}"},
            {"role": "user", "content": "hi 13900001111"},
        ]
    )
    masked = ContentFilter().mask_request(body, retrieved=frozenset({0}))
    vault = masked.vault
    assert vault.resolve("<ID_CARD_1>") is None
    assert vault.resolve("<PHONE_1>") is None
    assert vault.resolve("<PHONE_2>") == "13900001111"
    assert masked.system_prompt == "operator: <PHONE_1>"  # the passage is not guarded as one


def test_a_value_the_caller_also_sent_is_restorable() -> None:
    vault = Vault()
    issued = vault.placeholder("PHONE", PHONE, PHONE, restorable=False)
    assert vault.resolve(issued) is None
    assert vault.placeholder("PHONE", PHONE, PHONE) == issued
    assert vault.resolve(issued) == PHONE


def test_restored_values_are_escaped_inside_json() -> None:
    vault = Vault()
    issued = vault.placeholder("SECRET", 'a"b\\c', 'a"b\\c')
    text = '{"k": "' + issued + '"}'
    assert orjson.loads(vault.restore(text, lambda v: json.dumps(v)[1:-1])) == {"k": 'a"b\\c'}


def conversation(cf: ContentFilter, user: str, system: str | None = None) -> Any:
    messages = [{"role": "user", "content": user}]
    if system:
        messages.insert(0, {"role": "system", "content": system})
    return cf.mask_request(request(messages=messages))


def test_a_whole_answer_is_restored_in_every_field_and_choice() -> None:
    cf = ContentFilter()
    filtered = AnswerFilter(cf, conversation(cf, f"mine is {PHONE}"))
    calls = [
        {
            "id": "c",
            "type": "function",
            "function": {"name": "f", "arguments": '{"p": "<PHONE_1>"}'},
        }
    ]
    answer = {
        "choices": [
            {"index": 0, "message": {"content": "<PHONE_1>", "refusal": "no <PHONE_1>"}},
            {"index": 1, "message": {"content": None, "tool_calls": calls}},
            {"index": 2, "message": {"content": "x", "reasoning_content": "r <PHONE_1>"}},
        ]
    }
    filtered.apply(answer)
    first, second, third = (c["message"] for c in answer["choices"])
    assert first == {"content": PHONE, "refusal": f"no {PHONE}"}
    assert json.loads(second["tool_calls"][0]["function"]["arguments"]) == {"p": PHONE}
    assert third["reasoning_content"] == f"r {PHONE}"


def test_a_secret_in_a_refusal_stops_that_choice() -> None:
    cf = ContentFilter()
    filtered = AnswerFilter(cf, conversation(cf, "hi"))
    key = "sk-proj-Abcdefghijklmnopqrstuvwxyz0123456789ABCD"
    answer = {"choices": [{"index": 0, "message": {"content": "ok", "refusal": key}}]}
    filtered.apply(answer)
    assert answer["choices"][0]["finish_reason"] == "content_filter"
    assert key not in json.dumps(answer)


def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_streamed_tool_arguments_are_restored_across_chunks(size: int) -> None:
    cf = ContentFilter()
    filtered = AnswerFilter(cf, conversation(cf, f"call {PHONE}"))
    arguments = '{"phone": "<PHONE_1>", "note": "电话"}'
    out: list[dict[str, Any]] = []
    head = {
        "tool_calls": [
            {"index": 0, "id": "c", "type": "function", "function": {"name": "f", "arguments": ""}}
        ]
    }
    for piece in [head] + [
        {"tool_calls": [{"index": 0, "function": {"arguments": arguments[i : i + size]}}]}
        for i in range(0, len(arguments), size)
    ]:
        if (kept := filtered.chunk(chunk(0, piece))) is not None:
            out.append(kept)
    last = filtered.chunk(chunk(0, {}, "tool_calls"))
    assert last is not None
    out.append(last)
    text = "".join(
        call["function"].get("arguments", "")
        for c in out
        for choice in c["choices"]
        for call in choice["delta"].get("tool_calls", [])
    )
    assert json.loads(text) == {"phone": PHONE, "note": "电话"}
    assert out[0]["choices"][0]["delta"]["tool_calls"][0]["id"] == "c"


def test_streamed_choices_are_kept_apart() -> None:
    cf = ContentFilter()
    filtered = AnswerFilter(cf, conversation(cf, f"call {PHONE}"))
    texts: dict[int, str] = {0: "", 1: ""}
    for piece in ("<PH", "ONE_", "1> ok"):
        for index in (0, 1):
            kept = filtered.chunk(chunk(index, {"content": piece}))
            for choice in (kept or {"choices": []})["choices"]:
                texts[choice["index"]] += choice["delta"].get("content", "")
    for index in (0, 1):
        kept = filtered.chunk(chunk(index, {}, "stop"))
        assert kept is not None
        texts[index] += kept["choices"][0]["delta"].get("content", "")
    assert texts == {0: f"{PHONE} ok", 1: f"{PHONE} ok"}


def test_a_secret_streamed_in_reasoning_stops_the_answer() -> None:
    cf = ContentFilter()
    filtered = AnswerFilter(cf, conversation(cf, "hi"))
    key = "sk-proj-Abcdefghijklmnopqrstuvwxyz0123456789ABCD"
    with pytest.raises(ContentBlockedError):
        for i in range(0, len(key), 4):
            filtered.chunk(chunk(0, {"reasoning_content": key[i : i + 4]}))
        filtered.chunk(chunk(0, {}, "stop"))


def test_past_a_thousand_findings_all_are_acted_on_and_the_rest_counted() -> None:
    text = "1.1.1.1 " * 1500 + f"{ID_CARD} {PHONE}"
    result = ContentFilter().scan(text)
    assert "1.1.1.1" not in result.masked_text and ID_CARD not in result.masked_text
    assert len(result.detections) == 1_000 and result.omitted == 502
    assert result.verdict == "mask" and result.level.value == "confidential"  # the ID, unlisted
    strict = ContentFilter(FilterPolicy(entities={"ID_CARD": "block"})).scan(text)
    assert strict.verdict == "block"
    assert strict.detections[-1].type == "ID_CARD"  # a block is always listed
