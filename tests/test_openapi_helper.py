"""The OpenAPI helper catches what it should: a checker that passes everything proves nothing."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from jsonschema import ValidationError

from tests.openapi import spec, translate_nullable, validate, validate_stream

COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "m1",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "logprobs": None,
            "message": {"role": "assistant", "content": "hi", "refusal": None},
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}

CHUNK: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1_700_000_000,
    "model": "m1",
    "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None, "logprobs": None}],
}


def sse(*payloads: dict[str, Any] | str) -> list[str]:
    lines: list[str] = []
    for payload in payloads:
        text = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
        lines += [f"data: {text}", ""]
    return lines


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        own = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return own.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def test_every_ref_in_the_loaded_spec_resolves() -> None:
    schemas = spec()["components"]["schemas"]
    assert len(schemas) > 1400
    refs = _refs(spec())
    assert refs and all(ref.startswith("#/components/schemas/") for ref in refs)
    missing = {ref for ref in refs if ref.removeprefix("#/components/schemas/") not in schemas}
    assert not missing


def test_a_valid_completion_passes() -> None:
    validate("CreateChatCompletionResponse", COMPLETION)


def test_a_completion_without_choices_fails() -> None:
    broken = {k: v for k, v in COMPLETION.items() if k != "choices"}
    with pytest.raises(ValidationError, match="choices"):
        validate("CreateChatCompletionResponse", broken)


def test_a_bad_value_behind_a_ref_fails() -> None:
    broken = copy.deepcopy(COMPLETION)
    broken["usage"]["total_tokens"] = "four"  # CompletionUsage is reached through a $ref
    with pytest.raises(ValidationError):
        validate("CreateChatCompletionResponse", broken)


def test_a_null_finish_reason_passes_because_nullable_is_translated() -> None:
    validate("CreateChatCompletionStreamResponse", CHUNK)


def test_a_numeric_finish_reason_fails() -> None:
    broken = copy.deepcopy(CHUNK)
    broken["choices"][0]["finish_reason"] = 5
    with pytest.raises(ValidationError):
        validate("CreateChatCompletionStreamResponse", broken)


def test_an_unknown_finish_reason_fails() -> None:
    broken = copy.deepcopy(CHUNK)
    broken["choices"][0]["finish_reason"] = "tired"
    with pytest.raises(ValidationError):
        validate("CreateChatCompletionStreamResponse", broken)


def test_unknown_schema_name_is_an_error_not_a_pass() -> None:
    with pytest.raises(KeyError):
        validate("NoSuchSchema", {})


@pytest.mark.parametrize(
    ("schema", "translated"),
    [
        ({"type": "string", "nullable": True}, {"type": ["string", "null"]}),
        (
            {"type": "string", "enum": ["a"], "nullable": True},
            {"type": ["string", "null"], "enum": ["a", None]},
        ),
        (
            {"$ref": "#/x", "nullable": True},
            {"anyOf": [{"$ref": "#/x"}, {"type": "null"}]},
        ),
        (
            {"oneOf": [{"type": "integer"}], "nullable": True},
            {"anyOf": [{"oneOf": [{"type": "integer"}]}, {"type": "null"}]},
        ),
        ({"type": "string", "nullable": False}, {"type": "string"}),
        (
            {"properties": {"a": {"type": "integer", "nullable": True}}},
            {"properties": {"a": {"type": ["integer", "null"]}}},
        ),
    ],
)
def test_translate_nullable(schema: dict[str, Any], translated: dict[str, Any]) -> None:
    assert translate_nullable(schema) == translated


def test_validate_stream_returns_the_chunks() -> None:
    error = {"error": {"message": "boom", "type": "server_error", "param": None, "code": None}}
    chunks = validate_stream(sse(CHUNK, error, "[DONE]"))
    assert chunks == [CHUNK, error]


def test_validate_stream_rejects_a_stream_without_done() -> None:
    with pytest.raises(ValidationError, match=r"\[DONE\]"):
        validate_stream(sse(CHUNK, CHUNK))


def test_validate_stream_rejects_events_after_done() -> None:
    with pytest.raises(ValidationError, match="last"):
        validate_stream(sse(CHUNK, "[DONE]", CHUNK, "[DONE]"))


def test_validate_stream_rejects_a_bad_chunk() -> None:
    broken = copy.deepcopy(CHUNK)
    broken["choices"][0]["finish_reason"] = 5
    with pytest.raises(ValidationError):
        validate_stream(sse(CHUNK, broken, "[DONE]"))


def test_validate_stream_rejects_a_bad_error_event() -> None:
    with pytest.raises(ValidationError):
        validate_stream(sse({"error": {"message": "no type"}}, "[DONE]"))
