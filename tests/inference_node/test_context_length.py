"""A prompt longer than the model's context, on a real node process with llama.cpp.

OpenAI answers it with 400 ``invalid_request_error``, code ``context_length_exceeded``;
so does the node, plain and streamed (refused before the stream's first byte), and the
gateway passes it on as the client's error.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import API_KEY, NODE_MODEL, Server
from tests.openapi import validate

# ~3,000 tokens: past the default 2,048-token context, well under the body limit
LONG = "the quick brown fox jumps over the lazy dog. " * 340


@pytest.mark.parametrize("streamed", [False, True])
def test_a_prompt_past_the_context_is_context_length_exceeded(node: Server, streamed: bool) -> None:
    body: dict[str, Any] = {
        "model": NODE_MODEL,
        "max_tokens": 1,
        "stream": streamed,
        "messages": [{"role": "user", "content": LONG}],
    }
    response = httpx.post(f"{node.url}/v1/chat/completions", json=body, timeout=120)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    validate("ErrorResponse", response.json())
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "context_length_exceeded")
    assert error["param"] == "messages"
    short = {**body, "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(f"{node.url}/v1/chat/completions", json=short, timeout=120).status_code == 200


@pytest.mark.parametrize("streamed", [False, True])
def test_the_gateway_passes_it_on_as_the_clients_error(gateway: Server, streamed: bool) -> None:
    body = {
        "model": "smollm2",
        "max_tokens": 1,
        "stream": streamed,
        "messages": [{"role": "user", "content": LONG}],
    }
    headers = {"authorization": f"Bearer {API_KEY}"}
    url = f"{gateway.url}/v1/chat/completions"
    response = httpx.post(url, json=body, headers=headers, timeout=120)
    assert response.status_code == 400, response.text
    validate("ErrorResponse", response.json())
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "context_length_exceeded")
    assert "retry-after" not in response.headers
