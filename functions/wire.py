"""OpenAI wire types: what crosses the HTTP boundary, and nothing else.

Fields follow the order of the OpenAI reference (``../shared/openai-openapi``);
Enclave's own extensions are marked. This module imports no engine, no settings
and no web framework, so both the gateway and the node can share it.

Requests keep unknown fields (``extra="allow"``): a parameter we do not model,
``tools`` or ``response_format`` say, still reaches an upstream that supports it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_serializer

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ContentPart(_Open):
    type: str
    text: str | None = None


class ChatMessage(_Open):
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def text(self) -> str:
        """The message's text, with multi-part content joined."""
        if isinstance(self.content, str):
            return self.content
        if self.content is None:
            return ""
        return "".join(part.text or "" for part in self.content if part.type == "text")


class StreamOptions(_Open):
    include_usage: bool | None = None


class ChatCompletionRequest(_Open):
    messages: list[ChatMessage] = Field(min_length=1)
    model: str = Field(min_length=1)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    max_completion_tokens: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1, le=128)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    user: str | None = None

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def wants_usage_in_stream(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class Usage(BaseModel):
    completion_tokens: int
    prompt_tokens: int
    total_tokens: int


class ResponseMessage(BaseModel):
    content: str | None
    refusal: str | None = None
    role: Literal["assistant"] = "assistant"


class Choice(BaseModel):
    finish_reason: FinishReason
    index: int
    message: ResponseMessage
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    choices: list[Choice]
    created: int
    model: str
    object: Literal["chat.completion"] = "chat.completion"
    usage: Usage | None = None


class Delta(BaseModel):
    content: str | None = None
    role: Literal["assistant"] | None = None


class ChunkChoice(BaseModel):
    delta: Delta
    logprobs: None = None
    finish_reason: FinishReason | None = None
    index: int = 0

    @field_serializer("delta")
    def _delta_without_nulls(self, delta: Delta) -> dict[str, Any]:
        return delta.model_dump(exclude_none=True)  # OpenAI omits, never nulls, delta fields


class ChatCompletionChunk(BaseModel):
    id: str
    choices: list[ChunkChoice]
    created: int
    model: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    created: int
    object: Literal["model"] = "model"
    owned_by: str
    # Enclave extension: the weights behind the model (path, kind, revision) on a node
    enclave: dict[str, str] | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


def sse_event(payload: BaseModel | dict[str, Any]) -> bytes:
    """One ``data:`` event of an OpenAI stream."""
    if isinstance(payload, BaseModel):
        return b"data: " + payload.model_dump_json().encode() + b"\n\n"
    return b"data: " + orjson.dumps(payload) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"
