"""The node over the real llama.cpp engine and SmolLM2, driven with the ``openai`` SDK.

* With no sampling parameters, the model's recommended defaults apply (shown in
  ``/v1/models``) and "What is the capital of France?" gets an answer that ends by itself
  instead of a loop. The control: the same question greedy and without the repetition
  penalty (the kind of loop the old defaults produced) is caught by the same checks.
* ``frequency_penalty`` and ``presence_penalty`` are accepted and checked (-2..2).
* With one generation slot, an interactive request queued *after* a background one starts
  *before* it, as the node's "generation started" log lines show; a queued request whose
  client goes away leaves the queue.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from functions.settings import NodeSettings
from inference_node.engine import GenerationParams
from inference_node.engines.llama_cpp import LlamaCppEngine
from tests.conftest import NODE_MODEL, Server

QUESTION: Any = [{"role": "user", "content": "What is the capital of France?"}]


def direct(node: Server) -> OpenAI:
    return OpenAI(base_url=f"{node.url}/v1", api_key="unused", max_retries=0, timeout=300)


def most_repeated_trigram(text: str) -> int:
    words = re.findall(r"\w+", text.lower())
    counts = collections.Counter(zip(words, words[1:], words[2:], strict=False))
    return max(counts.values(), default=0)


def looks_degenerate(text: str, finish_reason: str) -> bool:
    """A loop repeats itself until the token budget runs out."""
    return finish_reason == "length" or most_repeated_trigram(text) > 3


def test_the_first_answer_with_no_sampling_parameters_is_not_a_loop(node: Server) -> None:
    with direct(node) as client:
        card = client.models.list().data[0]
        defaults = (card.model_extra or {})["enclave"]["sampling_defaults"]
        assert (defaults["temperature"], defaults["top_p"]) == (0.2, 0.9)
        assert defaults["repeat_penalty"] == 1.1
        assert defaults["source"]["temperature"] == "family:smollm2"
        # no sampling parameters, as a first chat sends; seeded only so that a rare long
        # answer cannot fail CI by chance (unseeded, this test failed now and then)
        for seed in (1, 2, 3):
            answer = client.chat.completions.create(
                model=NODE_MODEL, messages=QUESTION, max_tokens=200, seed=seed
            )
            text, finish = answer.choices[0].message.content or "", answer.choices[0].finish_reason
            assert text.strip() and not looks_degenerate(text, finish), (finish, text)


def test_control_greedy_without_a_repetition_penalty_loops() -> None:
    """The checks above can fail: the loop the issue reported, reproduced on the engine."""
    engine = LlamaCppEngine(NodeSettings())

    async def answer() -> tuple[str, str]:
        params = GenerationParams(messages=QUESTION, max_tokens=120, temperature=0.0)
        pieces = [piece async for piece in engine.generate(params)]
        await engine.aclose()
        return "".join(p.text for p in pieces), pieces[-1].finish_reason or ""

    text, finish = asyncio.run(answer())
    assert looks_degenerate(text, finish), text


def test_penalties_are_accepted_and_checked(node: Server) -> None:
    with direct(node) as client:
        answer = client.chat.completions.create(
            model=NODE_MODEL,
            messages=QUESTION,
            max_tokens=16,
            frequency_penalty=1.0,
            presence_penalty=-0.5,
        )
        assert answer.choices[0].message.content
        for field in ("frequency_penalty", "presence_penalty"):
            with pytest.raises(openai.BadRequestError) as refused:
                client.chat.completions.create(
                    model=NODE_MODEL, messages=QUESTION, max_tokens=4, **{field: 2.5}
                )
            assert refused.value.status_code == 400
            assert refused.value.body["param"] == field  # type: ignore[index]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Poll for a state the test needs before going on (a precondition, not a timing)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


@contextlib.contextmanager
def gone_while_queued(node: Server) -> Iterator[None]:
    """A background request on a raw socket, closed (the client gone) when the block ends."""
    body = json.dumps({"model": NODE_MODEL, "messages": QUESTION, "max_tokens": 4}).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nhost: node\r\ncontent-type: application/json"
        f"\r\nx-enclave-priority: background\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", node.port)) as client:
        client.sendall(head.encode() + body)
        yield


def test_an_interactive_request_overtakes_a_background_one_on_a_single_slot(
    node: Server,
) -> None:
    tag = f"prio{time.monotonic_ns()}"
    ids = {name: f"{tag}-{name}" for name in ("running", "tags", "question")}

    def headers(name: str, priority: str | None) -> dict[str, str]:
        extra = {"x-request-id": ids[name]}
        return extra if priority is None else {**extra, "x-enclave-priority": priority}

    def queued() -> int:
        return int(httpx.get(f"{node.url}/health", timeout=5).json()["queue"])

    def ask(client: OpenAI, name: str, priority: str | None) -> str:
        answer = client.chat.completions.create(
            model=NODE_MODEL,
            messages=QUESTION,
            max_tokens=4,
            extra_headers=headers(name, priority),
        )
        return answer.choices[0].finish_reason

    story = "Write a very long story about a dragon, in many chapters."
    long_story: Any = [{"role": "user", "content": story}]
    with direct(node) as client, ThreadPoolExecutor(2) as pool:
        # a background generation that holds the node's one slot (1,500 tokens with
        # this seed: minutes on a CPU; it is closed as soon as the others are queued)
        running = client.chat.completions.create(
            model=NODE_MODEL,
            messages=long_story,
            max_tokens=1500,
            temperature=1.0,
            top_p=1.0,
            seed=1,
            stream=True,
            extra_headers=headers("running", "background"),
        )
        next(iter(running))
        tags = pool.submit(ask, client, "tags", "background")
        wait_until(lambda: queued() == 1, "the background request queued")
        question = pool.submit(ask, client, "question", None)  # no header: interactive
        wait_until(lambda: queued() == 2, "both requests queued behind the running one")
        with gone_while_queued(node):  # a third, whose client goes away while it waits
            wait_until(lambda: queued() == 3, "a third request queued")
        wait_until(lambda: queued() == 2, "the third request's place freed")
        running.close()  # the client goes away: its slot is freed
        assert question.result(timeout=300) and tags.result(timeout=300)

    def started() -> list[tuple[str, str]]:
        lines = [line for line in node.logs() if line.get("message") == "generation started"]
        return [
            (line["trace.id"].removeprefix(f"{tag}-"), line["enclave"]["priority"])
            for line in lines
            if line.get("trace.id", "").startswith(tag)
        ]

    wait_until(lambda: len(started()) == 3, "three generation-started lines", timeout=10)

    # it held the slot until closed: nothing else could start before, nor leave the queue but
    # the request whose client went away
    def closed(line: dict[str, Any]) -> bool:
        cancelled = line["message"] == "stream cancelled: the client went away"
        return cancelled and line.get("trace.id") == ids["running"]

    assert node.logged(closed)
    assert started() == [
        ("running", "background"),
        ("question", "interactive"),
        ("tags", "background"),
    ]


def test_model_params_set_what_llama_exposes_no_argument_for_then_restore_the_default() -> None:
    """llama.cpp's repacked layouts are off unless the node is told otherwise (the AMX kernel
    crashed every generation in a VM guest): the override reaches the loader, then goes."""
    import llama_cpp.llama_cpp as low

    from inference_node.engines.llama_cpp import model_params

    default = low.llama_model_default_params
    assert low.llama_model_default_params().use_extra_bufts  # llama.cpp's own default: on
    with model_params(use_extra_bufts=False):
        assert not low.llama_model_default_params().use_extra_bufts
    assert low.llama_model_default_params is default
    assert NodeSettings().llama_extra_buffers is False
    assert NodeSettings(llama_extra_buffers=True).llama_extra_buffers
