"""The node app in-process through httpx.ASGITransport, over a test-double engine.

``EchoEngine`` stands in for llama.cpp: it answers with the last user message,
word by word, then a final piece carrying the finish reason and token counts
(one token per word). Everything the node adds — OpenAI framing, usage, the
stream's shape, admission, errors — is checked against the OpenAI spec.

There is no pytest-asyncio: each test runs one ``asyncio.run``. ASGITransport
does not run the lifespan, so the load path enters ``app.router.lifespan_context``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from functions.errors import ContextLengthExceededError
from functions.settings import NodeSettings, Settings
from inference_node.engine import Engine, GenerationParams, Piece
from inference_node.exposure import NodeKeyMissingError, is_loopback
from inference_node.sampling import model_layers
from inference_node.server import create_app
from tests.openapi import validate, validate_stream

CHAT = "/v1/chat/completions"
MODEL = "echo-1"
Client = httpx.AsyncClient


class EchoEngine:
    """Test double: yields the last user message word by word, then a final piece."""

    model_id = MODEL

    def __init__(self, fail_after: int | None = None) -> None:
        self.fail_after = fail_after  # raise after this many words (a crash mid-generation)
        self.seen: list[GenerationParams] = []
        self.closed = False

    async def generate(self, params: GenerationParams) -> AsyncIterator[Piece]:
        self.seen.append(params)
        last_user = next(m for m in reversed(params.messages) if m["role"] == "user")
        words = last_user["content"].split()
        prompt = sum(len(m["content"].split()) for m in params.messages)
        for i, word in enumerate(words):
            if self.fail_after is not None and i >= self.fail_after:
                raise RuntimeError("engine crashed: CUDA error at 0xdeadbeef")
            yield Piece(word if i == 0 else f" {word}")
        yield Piece("", "stop", prompt_tokens=prompt, completion_tokens=len(words))

    async def health(self) -> bool:
        return True

    async def aclose(self) -> None:
        self.closed = True


def chat(content: Any = "hello brave new world", **fields: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": content},
        ],
        **fields,
    }


def drive(
    app: Starlette, scenario: Callable[[Client], Awaitable[Any]], lifespan: bool = False
) -> Any:
    async def main() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            if not lifespan:
                return await scenario(client)
            async with app.router.lifespan_context(app):
                return await scenario(client)

    return asyncio.run(main())


def post(payload: Any, engine: Engine | None = None, **kwargs: Any) -> httpx.Response:
    app = create_app(Settings(), engine=engine or EchoEngine())

    async def scenario(client: Client) -> httpx.Response:
        return await client.post(CHAT, json=payload, **kwargs)

    response: httpx.Response = drive(app, scenario)
    return response


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    validate("ErrorResponse", response.json())
    error: dict[str, Any] = response.json()["error"]
    return error


def test_a_plain_answer_validates_with_correct_usage() -> None:
    response = post(chat())
    assert response.status_code == 200
    body = response.json()
    validate("CreateChatCompletionResponse", body)
    assert body["model"] == MODEL
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": "hello brave new world",
        "refusal": None,
    }
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 6, "completion_tokens": 4, "total_tokens": 10}


def test_request_parameters_reach_the_engine() -> None:
    engine = EchoEngine()
    parts = [{"type": "text", "text": "multi "}, {"type": "text", "text": "part"}]
    response = post(
        chat(parts, stop=["\n\n", "END"], max_tokens=7, temperature=0.2, top_p=0.9, seed=3),
        engine=engine,
    )
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "multi part"
    (params,) = engine.seen
    assert params.messages[-1] == {"role": "user", "content": "multi part"}
    assert (params.stop, params.max_tokens, params.temperature, params.top_p, params.seed) == (
        ["\n\n", "END"],
        7,
        0.2,
        0.9,
        3,
    )


def stream(payload: dict[str, Any], engine: Engine | None = None) -> list[dict[str, Any]]:
    response = post({**payload, "stream": True}, engine=engine)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    return validate_stream(response.text.splitlines())


def test_a_stream_with_usage_validates_and_ends_with_a_usage_chunk() -> None:
    chunks = stream(chat(stream_options={"include_usage": True}))
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "hello brave new world"
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 6, "completion_tokens": 4, "total_tokens": 10}
    assert all(c.get("usage") is None for c in chunks[:-1])


def test_a_stream_without_usage_has_no_usage_chunk() -> None:
    chunks = stream(chat())
    assert all(c["choices"] for c in chunks)
    assert all(c.get("usage") is None for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_an_engine_failure_mid_stream_is_a_final_error_event() -> None:
    chunks = stream(chat(), engine=EchoEngine(fail_after=2))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if "choices" in c)
    assert text == "hello brave"
    error = chunks[-1]["error"]  # validated as an ErrorResponse by validate_stream
    assert error["type"] == "server_error"
    assert "deadbeef" not in error["message"]  # the engine's text is not leaked


def test_an_engine_failure_without_streaming_is_a_500_and_frees_the_slot() -> None:
    app = create_app(Settings(), engine=EchoEngine(fail_after=0))

    async def scenario(client: Client) -> list[httpx.Response]:
        # capacity 1: the second request only gets a slot if the first released it
        first = await client.post(CHAT, json=chat())
        second = await asyncio.wait_for(client.post(CHAT, json=chat()), timeout=2)
        return [first, second]

    for response in drive(app, scenario):
        assert "deadbeef" not in error_of(response, 500)["message"]


def test_a_failed_stream_frees_the_slot() -> None:
    app = create_app(Settings(), engine=EchoEngine(fail_after=1))

    async def scenario(client: Client) -> list[httpx.Response]:
        responses = []
        for _ in range(3):
            responses.append(
                await asyncio.wait_for(client.post(CHAT, json=chat(stream=True)), timeout=2)
            )
        return responses

    for response in drive(app, scenario):
        assert response.status_code == 200
        assert "error" in validate_stream(response.text.splitlines())[-1]


def test_a_wrong_model_is_404() -> None:
    error = error_of(post({**chat(), "model": "gpt-4o"}), 404)
    assert (error["code"], error["param"]) == ("model_not_found", "model")


def test_n_above_one_is_400() -> None:
    assert error_of(post(chat(n=2)), 400)["param"] == "n"


def test_an_invalid_body_is_400() -> None:
    assert error_of(post({"model": MODEL, "messages": []}), 400)["param"] == "messages"


def test_a_body_over_the_limit_is_413() -> None:
    app = create_app(Settings(node=NodeSettings(max_body_bytes=1024)), engine=EchoEngine())

    async def scenario(client: Client) -> httpx.Response:
        return await client.post(CHAT, json=chat("word " * 400))

    error_of(drive(app, scenario), 413)


def test_health_models_and_metrics() -> None:
    app = create_app(Settings(), engine=EchoEngine())

    async def scenario(client: Client) -> list[httpx.Response]:
        await client.post(CHAT, json=chat())
        return [await client.get(path) for path in ("/health", "/v1/models", "/metrics")]

    health, models, metrics = drive(app, scenario)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["model"] == MODEL
    validate("ListModelsResponse", models.json())
    assert [m["id"] for m in models.json()["data"]] == [MODEL]
    assert 'enclave_node_requests_total{deployment="",model="echo-1"' in metrics.text
    assert 'enclave_node_tokens_total{deployment="",direction="out",model="echo-1"} 4.0' in (
        metrics.text
    )


def test_a_node_key_when_set_is_required() -> None:
    settings = Settings(node=NodeSettings(api_key="node-secret"))
    app = create_app(settings, engine=EchoEngine())

    async def scenario(client: Client) -> list[httpx.Response]:
        return [
            await client.post(CHAT, json=chat()),
            await client.post(CHAT, json=chat(), headers={"authorization": "Bearer wrong"}),
            await client.post(CHAT, json=chat(), headers={"authorization": "Bearer node-secret"}),
            await client.get("/v1/models"),
        ]

    missing, wrong, right, models = drive(app, scenario)
    error_of(missing, 401)
    error_of(wrong, 401)
    assert right.status_code == 200
    error_of(models, 401)


def wait_for_health(client: Client) -> Callable[[str], Awaitable[httpx.Response]]:
    async def until_not(status: str) -> httpx.Response:
        for _ in range(200):
            response = await client.get("/health")
            if response.json()["status"] != status:
                return response
            await asyncio.sleep(0.01)
        raise AssertionError(f"/health stayed {status!r}")

    return until_not


def test_a_failed_load_is_reported_by_health() -> None:
    def load() -> Engine:
        raise RuntimeError("weights missing at /secret/path.gguf")

    app = create_app(Settings(), load=load)

    async def scenario(client: Client) -> list[httpx.Response]:
        health = await wait_for_health(client)("loading")
        return [health, await client.post(CHAT, json=chat())]

    health, answer = drive(app, scenario, lifespan=True)
    assert health.status_code == 503
    assert health.json()["status"] == "failed"
    assert health.json()["detail"]
    assert "/secret/path.gguf" not in health.text
    assert error_of(answer, 503)["code"] == "service_unavailable"


def test_while_loading_health_says_so_then_ok_and_the_engine_is_closed_at_exit() -> None:
    release = threading.Event()
    engine = EchoEngine()

    def load() -> Engine:
        release.wait(timeout=5)
        return engine

    app = create_app(Settings(), load=load)

    async def scenario(client: Client) -> list[httpx.Response]:
        loading = [await client.get("/health"), await client.post(CHAT, json=chat())]
        release.set()
        ready = await wait_for_health(client)("loading")
        return [*loading, ready, await client.post(CHAT, json=chat())]

    try:
        loading, refused, ready, answered = drive(app, scenario, lifespan=True)
    finally:
        release.set()
    assert loading.status_code == 503
    assert loading.json()["status"] == "loading"
    assert error_of(refused, 503)["code"] == "service_unavailable"
    assert refused.headers["retry-after"] == "2"
    assert ready.status_code == 200
    assert answered.status_code == 200
    assert engine.closed


@pytest.mark.parametrize("path", ["/v1/nope", "/health/x"])
def test_unknown_routes_are_404_json(path: str) -> None:
    app = create_app(Settings(), engine=EchoEngine())

    async def scenario(client: Client) -> httpx.Response:
        return await client.get(path)

    assert error_of(drive(app, scenario), 404)["code"] == "not_found"


class LongPromptEngine(EchoEngine):
    """Test double: a context of 8 words; a longer prompt is refused before any piece."""

    async def generate(self, params: GenerationParams) -> AsyncIterator[Piece]:
        prompt = sum(len(m["content"].split()) for m in params.messages)
        if prompt > 8:
            raise ContextLengthExceededError.of(prompt, 8)
        async for piece in super().generate(params):
            yield piece


@pytest.mark.parametrize("streamed", [False, True])
def test_a_prompt_past_the_context_is_a_400_before_the_first_byte(streamed: bool) -> None:
    app = create_app(Settings(), engine=LongPromptEngine())

    async def scenario(client: Client) -> list[httpx.Response]:
        # capacity 1: the short request only gets a slot if the refused one released it
        long = await client.post(CHAT, json=chat("word " * 20, stream=streamed))
        short = await asyncio.wait_for(client.post(CHAT, json=chat("hi", stream=streamed)), 2)
        return [long, short]

    long, short = drive(app, scenario)
    assert long.headers["content-type"].startswith("application/json")
    error = error_of(long, 400)
    assert (error["type"], error["code"]) == ("invalid_request_error", "context_length_exceeded")
    assert error["param"] == "messages" and "maximum context length is 8 tokens" in error["message"]
    assert short.status_code == 200


def test_an_engine_failure_before_the_first_piece_of_a_stream_is_a_plain_500() -> None:
    response = post(chat(stream=True), engine=EchoEngine(fail_after=0))
    assert "deadbeef" not in error_of(response, 500)["message"]


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "::", "node.internal"])
def test_the_app_refuses_to_exist_off_loopback_without_a_key(host: str) -> None:
    with pytest.raises(NodeKeyMissingError, match="ENCLAVE_NODE_API_KEY"):
        create_app(Settings(node=NodeSettings(host=host)), engine=EchoEngine())
    keyed = Settings(node=NodeSettings(host=host, api_key="sk-node-x"))
    assert create_app(keyed, engine=EchoEngine()) is not None


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"])
def test_loopback_needs_no_key(host: str) -> None:
    assert is_loopback(host)
    assert create_app(Settings(node=NodeSettings(host=host)), engine=EchoEngine()) is not None


class SmolEchoEngine(EchoEngine):
    """Test double: EchoEngine whose weights recommend what SmolLM2's model card does."""

    sampling = model_layers(["SmolLM2-135M-Instruct"])


def test_unset_sampling_is_the_models_default_and_set_sampling_reaches_the_engine() -> None:
    engine = SmolEchoEngine()
    app = create_app(Settings(node=NodeSettings(sampling_top_k=5)), engine=engine)
    penalties = {"frequency_penalty": 0.5, "presence_penalty": -0.25, "temperature": 0}

    async def scenario(client: Client) -> list[httpx.Response]:
        return [
            await client.post(CHAT, json=chat()),
            await client.post(CHAT, json=chat(**penalties)),
            await client.post(CHAT, json=chat(frequency_penalty=2.5)),
            await client.post(CHAT, json=chat(presence_penalty=-3, stream=True)),
            await client.get("/v1/models"),
        ]

    unset, penalised, too_high, too_low, models = drive(app, scenario)
    assert unset.status_code == penalised.status_code == 200
    assert error_of(too_high, 400)["param"] == "frequency_penalty"
    assert error_of(too_low, 400)["param"] == "presence_penalty"
    defaulted, asked = engine.seen  # the refused ones never reached the engine
    assert (defaulted.temperature, defaulted.top_p, defaulted.repeat_penalty) == (0.2, 0.9, 1.1)
    assert defaulted.top_k == 5  # the node's setting beats the model
    assert (defaulted.frequency_penalty, defaulted.presence_penalty) == (0.0, 0.0)
    assert (asked.temperature, asked.frequency_penalty, asked.presence_penalty) == (0, 0.5, -0.25)
    assert asked.repeat_penalty == 1.1

    validate("ListModelsResponse", models.json())
    shown = models.json()["data"][0]["enclave"]["sampling_defaults"]
    assert shown["temperature"] == 0.2 and shown["top_k"] == 5
    assert shown["source"]["temperature"] == "family:smollm2"
    assert shown["source"]["top_k"] == "settings"


class GatedEngine(EchoEngine):
    """Test double: records each generation as it starts, then holds it until ``gate`` opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def generate(self, params: GenerationParams) -> AsyncIterator[Piece]:
        self.seen.append(params)
        await self.gate.wait()
        yield Piece("done", "stop", prompt_tokens=1, completion_tokens=1)


async def until(condition: Callable[[], bool]) -> None:
    """Run the loop until ``condition`` holds (it depends on other tasks' progress only)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


def test_an_interactive_request_is_served_before_a_background_one_that_came_first() -> None:
    engine = GatedEngine()
    app = create_app(Settings(node=NodeSettings(api_key="node-key")), engine=engine)
    admission = app.state.node.admission
    key = {"authorization": "Bearer node-key"}
    background = {**key, "x-enclave-priority": "background"}

    async def scenario(client: Client) -> list[httpx.Response]:
        def ask(content: str, headers: dict[str, str]) -> asyncio.Future[httpx.Response]:
            return asyncio.ensure_future(client.post(CHAT, json=chat(content), headers=headers))

        running = ask("title", background)
        await until(lambda: len(engine.seen) == 1)  # holds the one slot
        tags = ask("tags", background)
        await until(lambda: admission.waiting == 1)
        person = ask("question", key)  # no header: interactive
        await until(lambda: admission.waiting == 2)
        # a caller that fails the node's key check never gets as far as the queue
        stranger = await client.post(
            CHAT, json=chat("x"), headers={"x-enclave-priority": "background"}
        )
        assert stranger.status_code == 401 and admission.waiting == 2
        engine.gate.set()
        return list(await asyncio.gather(running, tags, person))

    responses = drive(app, scenario)
    assert [r.status_code for r in responses] == [200, 200, 200]
    started = [params.messages[-1]["content"] for params in engine.seen]
    assert started == ["title", "question", "tags"]
