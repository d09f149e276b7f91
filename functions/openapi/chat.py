"""The chat route's schemas: the spec's ``CreateChatCompletionRequest`` cut down to the
parameters Enclave supports, the answers and chunks it emits, and OpenAI's error shape."""

from __future__ import annotations

from functions import wire
from functions.openapi.schema import (
    BOOLEAN,
    COLLECTION,
    INTEGER,
    JSON_OBJECT,
    SHORT,
    STRING,
    Schema,
    bounded,
    nullable,
    obj,
    ref,
)

# integers the wire holds to 64 bits (functions.wire.Int), as the spec's int64
_INT64: Schema = {**INTEGER, "minimum": wire.INT64_MIN, "maximum": wire.INT64_MAX}


def chat(field: str, schema: Schema) -> Schema:
    return bounded(wire.ChatCompletionRequest, field, schema)


def _number(field: str) -> Schema:
    return nullable(chat(field, {"type": "number"}))


def _part(kind: str, field: str, value: Schema) -> Schema:
    return obj(("type", field), type={"type": "string", "enum": [kind]}, **{field: value})


def _message(
    role: str, content: Schema | None, required: tuple[str, ...], **extra: Schema
) -> Schema:
    fields: dict[str, Schema] = {"role": {"type": "string", "enum": [role]}, **extra}
    if content is not None:
        fields["content"] = content
    return obj(("role", *required), **fields)


def _content(part: Schema) -> Schema:
    return {"oneOf": [STRING, {"type": "array", "minItems": 1, "items": part}]}


FUNCTION_CALL = obj(("name", "arguments"), name=SHORT, arguments=STRING)

CHAT_SCHEMAS: dict[str, Schema] = {
    "TextPart": _part("text", "text", STRING),
    "RefusalPart": _part("refusal", "refusal", STRING),
    "ImagePart": _part(
        "image_url",
        "image_url",
        obj(("url",), url=STRING, detail={"type": "string", "enum": ["auto", "low", "high"]}),
    ),
    "AudioPart": _part(
        "input_audio",
        "input_audio",
        obj(("data", "format"), data=STRING, format={"type": "string", "enum": ["wav", "mp3"]}),
    ),
    "FilePart": _part("file", "file", obj(file_data=STRING, file_id=STRING, filename=STRING)),
    "ToolCall": obj(
        ("id", "type", "function"),
        id=SHORT,
        type={"type": "string", "enum": ["function"]},
        function=FUNCTION_CALL,
    ),
    "SystemMessage": _message("system", _content(ref("TextPart")), ("content",), name=SHORT),
    "DeveloperMessage": _message("developer", _content(ref("TextPart")), ("content",), name=SHORT),
    "UserMessage": _message(
        "user",
        _content(
            {
                "oneOf": [
                    ref("TextPart"),
                    ref("ImagePart"),
                    ref("AudioPart"),
                    ref("FilePart"),
                ]
            }
        ),
        ("content",),
        name=SHORT,
    ),
    "AssistantMessage": _message(
        "assistant",
        nullable(_content({"oneOf": [ref("TextPart"), ref("RefusalPart")]})),
        (),
        name=SHORT,
        refusal=nullable(STRING),
        tool_calls={"type": "array", "maxItems": wire.MAX_TOOLS, "items": ref("ToolCall")},
        function_call=nullable(FUNCTION_CALL),
    ),
    "ToolMessage": _message(
        "tool", _content(ref("TextPart")), ("content", "tool_call_id"), tool_call_id=SHORT
    ),
    "FunctionMessage": _message("function", nullable(STRING), ("content", "name"), name=SHORT),
    "ChatMessage": {
        "oneOf": [
            ref(name)
            for name in (
                "DeveloperMessage",
                "SystemMessage",
                "UserMessage",
                "AssistantMessage",
                "ToolMessage",
                "FunctionMessage",
            )
        ]
    },
    "Tool": obj(
        ("type", "function"),
        type={"type": "string", "enum": ["function"]},
        function=obj(
            ("name",),
            name={"type": "string", "minLength": 1, "maxLength": 64},
            description=STRING,
            parameters=JSON_OBJECT,
            strict=nullable(BOOLEAN),
        ),
    ),
    "ResponseFormat": {
        "oneOf": [
            obj(("type",), type={"type": "string", "enum": ["text"]}),
            obj(("type",), type={"type": "string", "enum": ["json_object"]}),
            obj(
                ("type", "json_schema"),
                type={"type": "string", "enum": ["json_schema"]},
                json_schema=obj(
                    ("name",),
                    name={"type": "string", "minLength": 1, "maxLength": 64},
                    description=STRING,
                    schema=JSON_OBJECT,
                    strict=nullable(BOOLEAN),
                ),
            ),
        ]
    },
}

_STOP: Schema = {"type": "string", "minLength": 1, "maxLength": wire.MAX_STOP_CHARS}

CHAT_REQUEST: Schema = {
    "type": "object",
    "description": "OpenAI's CreateChatCompletionRequest, the parameters Enclave supports. "
    "Other fields are ignored: they never reach an upstream.",
    "required": ["messages", "model"],
    "properties": {
        "messages": chat("messages", {"type": "array", "items": ref("ChatMessage")}),
        "model": chat("model", {"type": "string"}),
        "frequency_penalty": _number("frequency_penalty"),
        "logit_bias": nullable(
            chat(
                "logit_bias",
                {
                    "type": "object",
                    "additionalProperties": {"type": "integer", "minimum": -100, "maximum": 100},
                },
            )
        ),
        "logprobs": nullable(BOOLEAN),
        "top_logprobs": nullable(chat("top_logprobs", INTEGER)),
        "max_completion_tokens": nullable(chat("max_completion_tokens", _INT64)),
        "max_tokens": nullable(chat("max_tokens", _INT64)),
        "metadata": nullable(
            {
                "type": "object",
                "maxProperties": wire.MAX_METADATA,
                "propertyNames": {"maxLength": 64},
                "additionalProperties": {"type": "string", "maxLength": 512},
            }
        ),
        "n": nullable(chat("n", INTEGER)),
        "parallel_tool_calls": nullable(BOOLEAN),
        "presence_penalty": _number("presence_penalty"),
        "reasoning_effort": nullable(
            {"type": "string", "enum": ["none", "minimal", "low", "medium", "high"]}
        ),
        "response_format": nullable(ref("ResponseFormat")),
        "seed": nullable(_INT64),
        "stop": nullable(
            {"oneOf": [_STOP, {"type": "array", "maxItems": wire.MAX_STOP, "items": _STOP}]}
        ),
        "stream": nullable(BOOLEAN),
        "stream_options": nullable(obj(include_usage=nullable(BOOLEAN))),
        "temperature": _number("temperature"),
        "tool_choice": nullable(
            {
                "oneOf": [
                    {"type": "string", "enum": ["none", "auto", "required"]},
                    obj(
                        ("type", "function"),
                        type={"type": "string", "enum": ["function"]},
                        function=obj(("name",), name={"type": "string", "maxLength": 64}),
                    ),
                ]
            }
        ),
        "tools": nullable(chat("tools", {"type": "array", "items": ref("Tool")})),
        "top_p": _number("top_p"),
        "user": nullable(chat("user", STRING)),
        "enclave": nullable(
            obj(
                collections={
                    "type": "array",
                    "maxItems": wire.MAX_COLLECTIONS,
                    "items": COLLECTION,
                },
                # how the answer shows its sources: the enclave.citations field, a
                # Markdown "Sources" block appended to its text, or both
                citations=nullable({"type": "string", "enum": ["field", "markdown", "both"]}),
            )
        ),
    },
}

_FINISH = {
    "type": "string",
    "enum": ["stop", "length", "tool_calls", "content_filter", "function_call"],
}
_USAGE = obj(
    ("prompt_tokens", "completion_tokens", "total_tokens"),
    prompt_tokens=INTEGER,
    completion_tokens=INTEGER,
    total_tokens=INTEGER,
)
_ANSWER_TOOL_CALLS: Schema = {"type": "array", "items": ref("ToolCall")}

ANSWER_SCHEMAS: dict[str, Schema] = {
    "Usage": _USAGE,
    "ChatCompletion": obj(
        ("id", "object", "created", "model", "choices"),
        id=STRING,
        object={"type": "string", "enum": ["chat.completion"]},
        created=INTEGER,
        model=STRING,
        choices={
            "type": "array",
            "items": obj(
                ("index", "message", "finish_reason"),
                index=INTEGER,
                finish_reason=_FINISH,
                logprobs=nullable(JSON_OBJECT),
                message=obj(
                    ("role", "content"),
                    role={"type": "string", "enum": ["assistant"]},
                    content=nullable(STRING),
                    refusal=nullable(STRING),
                    tool_calls=_ANSWER_TOOL_CALLS,
                ),
            ),
        },
        usage=nullable(ref("Usage")),
    ),
    "ChatCompletionChunk": obj(
        ("id", "object", "created", "model", "choices"),
        id=STRING,
        object={"type": "string", "enum": ["chat.completion.chunk"]},
        created=INTEGER,
        model=STRING,
        choices={
            "type": "array",
            "items": obj(
                ("index", "delta"),
                index=INTEGER,
                finish_reason=nullable(_FINISH),
                logprobs=nullable(JSON_OBJECT),
                delta=obj(
                    role={"type": "string", "enum": ["assistant"]},
                    content=nullable(STRING),
                    refusal=nullable(STRING),
                    tool_calls={"type": "array"},
                ),
            ),
        },
        usage=nullable(ref("Usage")),
    ),
    # one server-sent event of a chat stream: a chunk, an in-band error, or the end
    "ChatStreamEvent": obj(
        ("data",),
        data={
            "anyOf": [
                {"type": "string", "enum": ["[DONE]"]},
                {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {"oneOf": [ref("ChatCompletionChunk"), ref("ErrorResponse")]},
                },
            ]
        },
    ),
    "ModelList": obj(
        ("object", "data"),
        object={"type": "string", "enum": ["list"]},
        data={
            "type": "array",
            "items": obj(
                ("id", "object", "created", "owned_by"),
                id=STRING,
                object={"type": "string", "enum": ["model"]},
                created=INTEGER,
                owned_by=STRING,
            ),
        },
    ),
}

ERROR_SCHEMAS: dict[str, Schema] = {
    "Error": obj(
        ("message", "type", "param", "code"),
        message=STRING,
        type=STRING,
        param=nullable(STRING),
        code=nullable(STRING),
    ),
    "ErrorResponse": obj(("error",), error=ref("Error")),
}
