"""Wire types: requests validated as OpenAI does; what we build validates against the spec."""

from __future__ import annotations

from typing import Any

import orjson
import pydantic
import pytest

from functions.wire import (
    SSE_DONE,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    Choice,
    ChunkChoice,
    Delta,
    ModelCard,
    ModelList,
    ResponseMessage,
    Usage,
    completion_id,
    sse_event,
)
from tests.openapi import validate, validate_stream

USER = {"role": "user", "content": "hi"}


def request(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "m1", "messages": [USER], **fields})


@pytest.mark.parametrize(
    "payload",
    [
        {"model": "m1", "messages": []},
        {"messages": [USER]},
        {"model": "", "messages": [USER]},
        {"model": "m1"},
        {"model": "m1", "messages": "hi"},
        {"model": "m1", "messages": [{"content": "no role"}]},
        {"model": "m1", "messages": [{"role": "wizard", "content": "hi"}]},
        {"model": "m1", "messages": [USER], "temperature": "hot"},
        {"model": "m1", "messages": [USER], "temperature": 3},
        {"model": "m1", "messages": [USER], "temperature": -0.1},
        {"model": "m1", "messages": [USER], "top_p": 1.5},
        {"model": "m1", "messages": [USER], "max_tokens": 0},
        {"model": "m1", "messages": [USER], "n": 0},
        {"model": "m1", "messages": [USER], "stop": 5},
        {"model": 7, "messages": [USER]},
        {"model": "m1", "messages": [USER], "seed": -(2**73)},
        {"model": "m1", "messages": [USER], "max_tokens": 2**63},
        [USER],
    ],
    ids=[
        "empty-messages",
        "missing-model",
        "empty-model",
        "missing-messages",
        "messages-string",
        "no-role",
        "unknown-role",
        "temperature-hot",
        "temperature-3",
        "temperature-negative",
        "top_p-1.5",
        "max_tokens-0",
        "n-0",
        "stop-int",
        "model-int",
        "seed-past-int64",
        "max_tokens-past-int64",
        "not-an-object",
    ],
)
def test_invalid_requests_are_refused(payload: Any) -> None:
    with pytest.raises(pydantic.ValidationError):
        ChatCompletionRequest.model_validate(payload)


def test_a_minimal_request_is_accepted() -> None:
    body = request()
    assert body.model == "m1"
    assert body.messages[0].role == "user"
    assert body.stream is None


def test_supported_fields_reach_the_upstream_as_set() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    body = request(tools=tools, response_format={"type": "json_object"}, temperature=0.5)
    sent = body.upstream_fields()
    assert sent["tools"] == tools
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["temperature"] == 0.5
    assert "top_p" not in sent  # unset fields stay unset


def test_unknown_fields_are_dropped_at_every_depth() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}", "x": 1}}
    message = {"role": "assistant", "content": None, "tool_calls": [call], "api_key": "k"}
    body = request(messages=[USER, message], base_url="http://evil", enclave={"collections": []})
    sent = body.upstream_fields()
    assert set(sent) == {"model", "messages"}
    assert sent["messages"][1] == {
        "role": "assistant",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }


@pytest.mark.parametrize(
    ("stop", "expected"),
    [(None, []), ("END", ["END"]), (["a", "b"], ["a", "b"]), ([], [])],
)
def test_stop_list(stop: Any, expected: list[str]) -> None:
    fields = {} if stop is None else {"stop": stop}
    assert request(**fields).stop_list == expected


@pytest.mark.parametrize(
    ("fields", "limit"),
    [
        ({}, None),
        ({"max_tokens": 10}, 10),
        ({"max_completion_tokens": 5}, 5),
        ({"max_completion_tokens": 5, "max_tokens": 10}, 5),
    ],
)
def test_token_limit_prefers_max_completion_tokens(
    fields: dict[str, int], limit: int | None
) -> None:
    assert request(**fields).token_limit == limit


@pytest.mark.parametrize(
    ("fields", "wants"),
    [
        ({}, False),
        ({"stream": True}, False),
        ({"stream": True, "stream_options": {}}, False),
        ({"stream": True, "stream_options": {"include_usage": False}}, False),
        ({"stream": True, "stream_options": {"include_usage": True}}, True),
    ],
)
def test_wants_usage_in_stream(fields: dict[str, Any], wants: bool) -> None:
    assert request(**fields).wants_usage_in_stream is wants


def test_text_joins_the_text_parts_of_multipart_content() -> None:
    message = ChatMessage.model_validate(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Hello, "},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                {"type": "text", "text": "world"},
            ],
        }
    )
    assert message.text() == "Hello, world"


@pytest.mark.parametrize(("content", "text"), [("plain", "plain"), (None, ""), ([], "")])
def test_text_of_simple_content(content: Any, text: str) -> None:
    assert ChatMessage(role="user", content=content).text() == text


def usage() -> Usage:
    return Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5)


def completion() -> ChatCompletion:
    return ChatCompletion(
        id=completion_id(),
        choices=[Choice(finish_reason="stop", index=0, message=ResponseMessage(content="hi"))],
        created=1_700_000_000,
        model="m1",
        usage=usage(),
    )


def chunk(delta: Delta, finish: Any = None) -> ChatCompletionChunk:
    return ChatCompletionChunk(
        id="chatcmpl-1",
        choices=[ChunkChoice(delta=delta, finish_reason=finish)],
        created=1_700_000_000,
        model="m1",
    )


def test_a_chat_completion_as_serialised_validates() -> None:
    # exactly what the node sends: model_dump_json(), nulls included
    validate("CreateChatCompletionResponse", orjson.loads(completion().model_dump_json()))


@pytest.mark.parametrize(
    "built",
    [
        chunk(Delta(role="assistant", content="")),
        chunk(Delta(content="hi")),
        chunk(Delta(), "stop"),
        chunk(Delta(), "length"),
    ],
    ids=["role", "content", "stop", "length"],
)
def test_a_chunk_as_serialised_validates(built: ChatCompletionChunk) -> None:
    validate("CreateChatCompletionStreamResponse", orjson.loads(built.model_dump_json()))


def test_a_usage_chunk_as_serialised_validates() -> None:
    last = ChatCompletionChunk(
        id="chatcmpl-1", choices=[], created=1_700_000_000, model="m1", usage=usage()
    )
    validate("CreateChatCompletionStreamResponse", orjson.loads(last.model_dump_json()))


def test_a_model_list_validates() -> None:
    cards = [ModelCard(id=m, created=1_700_000_000, owned_by="enclave") for m in ("m1", "m2")]
    validate("ListModelsResponse", orjson.loads(ModelList(data=cards).model_dump_json()))


def test_the_completion_id_looks_like_openai_s() -> None:
    first, second = completion_id(), completion_id()
    assert first.startswith("chatcmpl-") and first != second


def test_sse_events_make_a_valid_stream() -> None:
    error = {"error": {"message": "boom", "type": "server_error", "param": None, "code": None}}
    raw = (
        sse_event(chunk(Delta(role="assistant", content="")))
        + sse_event(chunk(Delta(content="hi")))
        + sse_event(error)
        + SSE_DONE
    )
    assert raw.endswith(b"\n\n")
    chunks = validate_stream(raw.decode().splitlines())
    # OpenAI omits unset delta fields rather than sending nulls
    assert [c["choices"][0]["delta"] for c in chunks[:2]] == [
        {"content": "", "role": "assistant"},
        {"content": "hi"},
    ]
    assert chunks[2] == error
