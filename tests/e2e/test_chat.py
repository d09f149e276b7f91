"""End to end: the official openai SDK → gateway process → node process → SmolLM2."""

from __future__ import annotations

import httpx
import pytest
from openai import OpenAI

from tests.conftest import API_KEY, NODE_MODEL, Server
from tests.openapi import validate, validate_stream

QUESTION = [{"role": "user", "content": "Name one colour of the rainbow."}]


def test_non_streamed_answer_from_smollm2(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="smollm2", messages=QUESTION, max_tokens=24, temperature=0
    )
    validate("CreateChatCompletionResponse", raw.http_response.json())
    answer = raw.parse()
    assert answer.choices[0].message.content
    assert answer.choices[0].finish_reason in {"stop", "length"}
    assert answer.usage is not None
    assert answer.usage.prompt_tokens > 5
    assert 0 < answer.usage.completion_tokens <= 24
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens


def test_max_tokens_ends_with_length(client: OpenAI) -> None:
    answer = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Tell me a long story."}],
        max_tokens=3,
        temperature=0,
    )
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None and answer.usage.completion_tokens == 3


def test_seed_makes_sampling_repeatable(client: OpenAI) -> None:
    def ask() -> str | None:
        return (
            client.chat.completions.create(
                model="smollm2", messages=QUESTION, max_tokens=12, temperature=1.0, seed=7
            )
            .choices[0]
            .message.content
        )

    assert ask() == ask()


def test_stop_sequence_is_honoured(client: OpenAI) -> None:
    free = (
        client.chat.completions.create(
            model="smollm2", messages=QUESTION, max_tokens=24, temperature=0
        )
        .choices[0]
        .message.content
    )
    assert free and len(free) > 3
    stop = free[2:4]
    stopped = client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=24, temperature=0, stop=[stop]
    )
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == free[: free.index(stop)]


def test_streamed_answer_with_usage(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model="smollm2",
        messages=QUESTION,
        max_tokens=24,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert text
    assert finishes in (["stop"], ["length"])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


@pytest.mark.parametrize("model", ["smollm2", "smollm2-litellm"])
def test_stream_bytes_match_the_openapi_schema(gateway: Server, model: str) -> None:
    body = {"model": model, "messages": QUESTION, "max_tokens": 8, "stream": True}
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {API_KEY}"},
        timeout=120,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = list(response.iter_lines())
    chunks = validate_stream(lines)
    # the gateway asks the node for usage, but drops it when the client did not
    assert all(c.get("usage") is None for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"


def test_stream_and_plain_answers_agree(client: OpenAI) -> None:
    plain = (
        client.chat.completions.create(
            model="smollm2", messages=QUESTION, max_tokens=16, temperature=0
        )
        .choices[0]
        .message.content
    )
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(
            model="smollm2", messages=QUESTION, max_tokens=16, temperature=0, stream=True
        )
        if c.choices
    )
    assert plain == streamed


def test_litellm_path_answers_too(client: OpenAI) -> None:
    """A deployment routed through litellm's translation layer (via="litellm") to the same node."""
    raw = client.chat.completions.with_raw_response.create(
        model="smollm2-litellm", messages=QUESTION, max_tokens=8, temperature=0
    )
    validate("CreateChatCompletionResponse", raw.http_response.json())
    answer = client.chat.completions.create(
        model="smollm2-litellm", messages=QUESTION, max_tokens=8, temperature=0
    )
    assert answer.choices[0].message.content
    streamed = client.chat.completions.create(
        model="smollm2-litellm", messages=QUESTION, max_tokens=8, temperature=0, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)


def test_models_lists_what_the_gateway_serves(client: OpenAI) -> None:
    raw = client.models.with_raw_response.list()
    validate("ListModelsResponse", raw.http_response.json())
    models = raw.parse()
    assert {m.id for m in models.data} == {"smollm2", "smollm2-litellm"}


def test_request_id_reaches_the_node_and_comes_back(gateway: Server, node: Server) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "smollm2", "messages": QUESTION, "max_tokens": 2},
        headers={"authorization": f"Bearer {API_KEY}", "x-request-id": "trace-e2e-42"},
        timeout=120,
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "trace-e2e-42"
    assert node.logged(lambda line: line.get("trace.id") == "trace-e2e-42")
    assert gateway.logged(
        lambda line: line.get("trace.id") == "trace-e2e-42" and line["message"] == "chat"
    )
    # one line per request: the chat's outcome is its access line too
    lines = [line for line in gateway.logs() if line.get("trace.id") == "trace-e2e-42"]
    assert len(lines) == 1 and lines[0]["http.response.status_code"] == 200


def test_traceparent_trace_id_reaches_the_node_and_comes_back(
    gateway: Server, node: Server
) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "smollm2", "messages": QUESTION, "max_tokens": 2},
        headers={
            "authorization": f"Bearer {API_KEY}",
            "traceparent": f"00-{trace}-00f067aa0ba902b7-01",
        },
        timeout=120,
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == trace
    version, echoed, span, flags = response.headers["traceparent"].split("-")
    assert (version, echoed, flags) == ("00", trace, "01") and span != "00f067aa0ba902b7"
    assert node.logged(lambda line: line.get("trace.id") == trace)  # the relay passed it on
    assert gateway.logged(lambda line: line.get("trace.id") == trace and line["message"] == "chat")


def test_node_serves_the_openai_api_directly(node: Server) -> None:
    with OpenAI(base_url=f"{node.url}/v1", api_key="unused", max_retries=0) as direct:
        models = direct.models.list().data
        assert [m.id for m in models] == [NODE_MODEL]
        weights = (models[0].model_extra or {})["enclave"]
        assert weights["kind"] == "gguf" and weights["path"].endswith(".gguf")
        assert weights["revision"].startswith("fp-")
        answer = direct.chat.completions.create(model=NODE_MODEL, messages=QUESTION, max_tokens=4)
    assert answer.model == NODE_MODEL


@pytest.mark.parametrize("service", ["gateway", "node"])
def test_metrics_count_requests_and_tokens(
    service: str, request: pytest.FixtureRequest, client: OpenAI
) -> None:
    client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=2)
    server: Server = request.getfixturevalue(service)
    text = httpx.get(f"{server.url}/metrics", headers={"authorization": f"Bearer {API_KEY}"}).text
    prefix = f"enclave_{service}"
    for name in ("requests_total", "request_seconds_bucket", "tokens_total"):
        assert f"{prefix}_{name}" in text
    line = next(
        line
        for line in text.splitlines()
        if line.startswith(f"{prefix}_tokens_total") and 'direction="out"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) > 0
