"""Long conversations through a real gateway and a real llama.cpp node with a 512-token
context, driven as a frontend drives them: the openai SDK, no ``max_tokens``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import (
    API_KEY,
    NODE_MODEL,
    Server,
    create_key,
    deployment,
    gateway_env,
    start,
)

CONTEXT = 512
FILLER = "Tell me more about the history of trains in Europe and their routes. " * 3


@pytest.fixture(scope="module")
def small_node(log_dir: Path) -> Iterator[Server]:
    server = start("node", {"ENCLAVE_NODE_CONTEXT_TOKENS": str(CONTEXT)}, log_dir)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(
    small_node: Server, tmp_path_factory: pytest.TempPathFactory, log_dir: Path
) -> Iterator[tuple[Server, str]]:
    """The gateway, and a key of the tenant "strict" whose policy is ``error``."""
    data = tmp_path_factory.mktemp("data")
    deployments = [
        deployment("small", small_node),  # its context: from the node's /v1/models
        # a setting that overstates the node's context: the node refuses, the gateway retries
        deployment("overstated", small_node, model="overstated", context_tokens=1200),
        # one so large that nothing is dropped: the node's refusal is the answer
        deployment("blind", small_node, model="blind", context_tokens=100_000),
    ]
    env = gateway_env(
        deployments,
        ENCLAVE_DATA_DIR=str(data),
        ENCLAVE_WINDOW_TENANTS=json.dumps({"strict": {"policy": "error"}}),
    )
    gateway = start("gateway", env, log_dir)
    strict = create_key(data, "strict")
    yield gateway, strict
    gateway.stop()


def client(gateway: Server, key: str = API_KEY) -> OpenAI:
    return OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=300)


def window_decision(line: dict[str, Any]) -> str:
    """The ``window`` decision of a gateway log line ("" if it has none)."""
    return str(line.get("enclave", {}).get("decisions", {}).get("window", ""))


def long_history(turns: int) -> list[Any]:
    messages: list[Any] = [{"role": "system", "content": "You are a concise assistant."}]
    for n in range(turns):
        messages += [
            {"role": "user", "content": f"Question {n}. {FILLER}"},
            {"role": "assistant", "content": f"Answer {n}. {FILLER}"},
        ]
    return messages


def test_the_node_says_its_context_length(small_node: Server) -> None:
    listing = httpx.get(f"{small_node.url}/v1/models", timeout=10).json()
    assert listing["data"][0]["id"] == NODE_MODEL
    assert listing["data"][0]["context_length"] == CONTEXT


def test_a_long_conversation_without_max_tokens_keeps_answering(
    stack: tuple[Server, str], small_node: Server
) -> None:
    gateway, _ = stack
    messages: list[Any] = [{"role": "system", "content": "You are a concise assistant."}]
    dropped = []
    with client(gateway) as sdk:
        for turn in range(6):
            messages.append({"role": "user", "content": f"Question {turn}. {FILLER}"})
            raw = sdk.chat.completions.with_raw_response.create(model="smollm2", messages=messages)
            answer = raw.parse()
            assert answer.choices[0].finish_reason in ("stop", "length")
            assert answer.usage is not None and answer.usage.total_tokens <= CONTEXT
            dropped.append(int(raw.http_response.headers["x-enclave-context-dropped"]))
            messages.append({"role": "assistant", "content": answer.choices[0].message.content})
    assert dropped[0] == 0 and dropped[-1] > 0 and all(n % 2 == 0 for n in dropped)
    # without the gateway, the node refuses the conversation the user now has
    refused = httpx.post(
        f"{small_node.url}/v1/chat/completions",
        json={"model": NODE_MODEL, "messages": messages},
        timeout=60,
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "context_length_exceeded"
    # the decision names the messages left out, in the caller's numbering
    assert gateway.logged(lambda line: ":dropped=1:1-2:" in window_decision(line))


@pytest.mark.parametrize("stream", [False, True])
def test_the_error_policy_refuses_before_any_byte(stack: tuple[Server, str], stream: bool) -> None:
    gateway, strict = stack
    with client(gateway, strict) as sdk, pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model="smollm2", messages=long_history(4), stream=stream)
    assert refused.value.status_code == 400
    error: Any = refused.value.body
    assert (error["type"], error["code"]) == ("invalid_request_error", "context_length_exceeded")


@pytest.mark.parametrize("stream", [False, True])
def test_the_nodes_own_refusal_reads_the_same(stack: tuple[Server, str], stream: bool) -> None:
    gateway, _ = stack
    with client(gateway) as sdk, pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model="blind", messages=long_history(8), stream=stream)
    error: Any = refused.value.body
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "context_length_exceeded",
        "messages",
    )


def test_a_refusal_under_truncate_is_retried_once_with_fewer_turns(
    stack: tuple[Server, str],
) -> None:
    gateway, _ = stack
    messages = [*long_history(8), {"role": "user", "content": "And in one word?"}]
    with client(gateway) as sdk:
        chunks = list(
            sdk.chat.completions.create(
                model="overstated", messages=messages, stream=True, max_tokens=8
            )
        )
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert gateway.logged(lambda line: window_decision(line).endswith(":retried"))
