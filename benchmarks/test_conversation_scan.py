"""The input step on a conversation's 20th turn: every earlier turn scanned again, or
remembered (:mod:`functions.filtering.memo`).

A frontend sends the whole conversation each turn. Twenty turns of about 200
characters, Chinese and English alternating (Faker text with a phone number and an
email in some); ``fresh`` masks the 20-turn request with no memo (each turn scanned),
``remembered`` with the first 19 turns already seen by the same tenant, as they are
after the 19 turns before. Run: ``pytest benchmarks/test_conversation_scan.py
--benchmark-only -s``.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from faker import Faker

from benchmarks.conftest import report
from functions.filtering import ContentFilter
from functions.wire import ChatCompletionRequest

TURNS = 20


def _conversation(seed: int) -> ChatCompletionRequest:
    rng = random.Random(seed)
    zh, en = Faker("zh_CN"), Faker("en_US")
    zh.seed_instance(seed)
    en.seed_instance(seed)
    messages = []
    for turn in range(TURNS):
        fake = zh if turn % 2 else en
        text = fake.text(max_nb_chars=200)
        if rng.random() < 0.3:
            text += f" {fake.phone_number()} {fake.email()}"
        messages.append({"role": ("user", "assistant")[turn % 2], "content": text})
    messages[-1]["role"] = "user"
    return ChatCompletionRequest.model_validate({"model": "m", "messages": messages})


@pytest.mark.parametrize("mode", ["fresh", "remembered"])
def test_twentieth_turn_input_step(benchmark: Any, mode: str) -> None:
    body = _conversation(7)
    cf = ContentFilter()
    tenant = "acme" if mode == "remembered" else None
    if tenant is not None:
        earlier = body.model_copy(update={"messages": body.messages[:-1]})
        cf.mask_request(earlier, tenant=tenant)
        last = body.messages[-1]

        def run() -> None:  # the new turn is new each round: forget it, keep the others
            cf.memo._entries.pop(cf.memo.key(tenant, "input", str(last.content)), None)
            cf.mask_request(body, tenant=tenant)

    else:

        def run() -> None:
            cf.mask_request(body)

    benchmark.pedantic(run, rounds=30, iterations=1, warmup_rounds=2)
    report(benchmark, f"input step, turn {TURNS}, {mode}", p50_ms=benchmark.stats["median"] * 1e3)
