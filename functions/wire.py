"""OpenAI wire types: what crosses the HTTP boundary, and nothing else.

Fields follow the order of the OpenAI reference (``../shared/openai-openapi``);
Enclave's own extensions are marked. This module imports no engine, no settings
and no web framework, so both the gateway and the node can share it.

Requests are an allow-list (``extra="ignore"``, strict types): a field we do not
model is dropped at parsing, so no caller field can name a destination, a credential
or a provider option; what an upstream receives is built from what is modelled here
(:meth:`ChatCompletionRequest.upstream_fields`), never forwarded from what came in.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_serializer

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]
# Enclave extension: how an answer shows its sources (Enclave's response field, a Markdown
# "Sources" block appended to its text, or both)
CitationStyle = Literal["field", "markdown", "both"]


# Bounds on what one request may contain (I4): each is a clear 400, never a slow scan.
MAX_MODEL_CHARS = 256
MAX_MESSAGES = 2048
MAX_TOOLS = 128  # OpenAI's own limit
MAX_STOP = 4  # OpenAI's own limit
MAX_STOP_CHARS = 256
MAX_N = 16
MAX_NAME_CHARS = 256
MAX_METADATA = 16  # OpenAI: 16 pairs, keys up to 64 characters, values up to 512
MAX_SCHEMA_DEPTH = 32  # nesting of free-form JSON (tool parameters, response schemas)
MAX_COLLECTIONS = 32


def _integral(value: Any) -> Any:
    """``2.0`` is an integer to JSON Schema and to the spec; ``2.5``, ``"2"`` and ``true``
    are not (strict mode refuses them)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# the spec's integers are 64-bit (OpenAI's own ``seed`` says so); a larger one is a 400
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
Int = Annotated[int, BeforeValidator(_integral), Field(ge=INT64_MIN, le=INT64_MAX)]
_Short = Annotated[str, Field(max_length=MAX_NAME_CHARS)]
_Stop = Annotated[str, Field(min_length=1, max_length=MAX_STOP_CHARS)]


def json_depth(value: Any, limit: int) -> int:
    """How deep ``value`` nests, counting no further than ``limit + 1`` (iterative)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict | list) or depth > limit + 1:
            continue
        deepest = max(deepest, depth)
        stack.extend(
            (child, depth + 1) for child in (node.values() if isinstance(node, dict) else node)
        )
    return deepest


def _bounded_json(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and json_depth(value, MAX_SCHEMA_DEPTH) > MAX_SCHEMA_DEPTH:
        raise ValueError(f"nests deeper than {MAX_SCHEMA_DEPTH} levels")
    return value


FreeJSON = Annotated[dict[str, Any], AfterValidator(_bounded_json)]


class _Wire(BaseModel):
    """A request object: types exactly as the spec has them (``"100"`` is no integer), and
    fields we do not model are dropped here, so nothing unknown ever reaches an upstream."""

    model_config = ConfigDict(extra="ignore", strict=True)


class ImageURL(_Wire):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class InputAudio(_Wire):
    data: str
    format: Literal["wav", "mp3"]


class FileInput(_Wire):
    file_data: str | None = None
    file_id: str | None = None
    filename: str | None = None


class ContentPart(_Wire):
    type: Literal["text", "image_url", "input_audio", "file", "refusal"]
    text: str | None = None
    refusal: str | None = None
    image_url: ImageURL | None = None
    input_audio: InputAudio | None = None
    file: FileInput | None = None

    @property
    def readable(self) -> bool:
        """Whether the gateway can read (and so scan) this part: text and refusals only."""
        return self.type in ("text", "refusal")


class FunctionCall(_Wire):
    name: _Short
    arguments: str


class ToolCall(_Wire):
    id: _Short
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Wire):
    role: Role
    content: str | list[ContentPart] | None = None
    name: _Short | None = None
    refusal: str | None = None  # assistant
    tool_calls: list[ToolCall] | None = Field(default=None, max_length=MAX_TOOLS)  # assistant
    function_call: FunctionCall | None = None  # assistant, deprecated
    tool_call_id: _Short | None = None  # tool

    def text(self) -> str:
        """The message's text, with multi-part content joined."""
        if isinstance(self.content, str):
            return self.content
        if self.content is None:
            return ""
        return "".join(part.text or "" for part in self.content if part.type == "text")


class FunctionDefinition(_Wire):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    description: str | None = None
    parameters: FreeJSON | None = None
    strict: bool | None = None


class Tool(_Wire):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(_Wire):
    name: Annotated[str, Field(max_length=64)]


class NamedToolChoice(_Wire):
    type: Literal["function"]
    function: NamedFunction


class JSONSchemaFormat(_Wire):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    description: str | None = None
    schema_: FreeJSON | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


class StreamOptions(_Wire):
    include_usage: bool | None = None


class EnclaveOptions(_Wire):
    """Enclave's own request extension (``extra_body={"enclave": {...}}``); never sent on."""

    collections: list[Annotated[str, Field(max_length=MAX_NAME_CHARS)]] = Field(
        default_factory=list, max_length=MAX_COLLECTIONS
    )
    # how the answer shows its sources; unset: the alias's style, else the field
    citations: CitationStyle | None = None


def _metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if len(value) > MAX_METADATA:
        raise ValueError(f"at most {MAX_METADATA} pairs")
    if any(len(k) > 64 or len(v) > 512 for k, v in value.items()):
        raise ValueError("keys are at most 64 characters, values at most 512")
    return value


class ChatCompletionRequest(_Wire):
    """The chat parameters Enclave supports, as the spec types them; the allow-list of what
    may be sent to an upstream (:meth:`upstream_fields`)."""

    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    model: str = Field(min_length=1, max_length=MAX_MODEL_CHARS)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, Annotated[Int, Field(ge=-100, le=100)]] | None = Field(
        default=None, max_length=1024
    )
    logprobs: bool | None = None
    top_logprobs: Int | None = Field(default=None, ge=0, le=20)
    max_completion_tokens: Int | None = Field(default=None, ge=1)
    max_tokens: Int | None = Field(default=None, ge=1)
    metadata: Annotated[dict[str, str] | None, AfterValidator(_metadata)] = None
    n: Int | None = Field(default=None, ge=1, le=MAX_N)
    parallel_tool_calls: bool | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    response_format: ResponseFormat | None = None
    seed: Int | None = None
    stop: _Stop | Annotated[list[_Stop], Field(max_length=MAX_STOP)] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    tools: list[Tool] | None = Field(default=None, max_length=MAX_TOOLS)
    top_p: float | None = Field(default=None, ge=0, le=1)
    user: str | None = Field(default=None, max_length=512)
    enclave: EnclaveOptions | None = None  # Enclave extension: never sent upstream

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

    def upstream_fields(self) -> dict[str, Any]:
        """The request as an upstream may see it: only the fields modelled here, as set."""
        return self.model_dump(
            exclude_unset=True, exclude_none=True, exclude={"enclave"}, by_alias=True
        )


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
    # Enclave extension: the weights behind the model (path, kind, revision) on a node,
    # and the sampling defaults it applies (sampling_defaults)
    enclave: dict[str, Any] | None = None
    # Enclave extension (as vLLM's max_model_len): prompt + answer tokens the model takes
    context_length: int | None = None


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
