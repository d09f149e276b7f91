"""The cache's parts: keys, policy, sealing, the memory store, and the two answer shapes."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers

from functions.cache.answers import Assembler, as_chunks, complete
from functions.cache.cache import ResponseCache, Sealer, cache_control, request_key
from functions.cache.settings import CacheSettings
from functions.cache.store import MemoryStore
from functions.filtering.classify import Level
from functions.wire import ChatCompletionRequest

KEK = {"k1": bytes(range(32))}
NO_HEADERS = Headers({})


def body(**fields: Any) -> ChatCompletionRequest:
    fields.setdefault("messages", [{"role": "user", "content": "hello"}])
    fields.setdefault("temperature", 0)
    return ChatCompletionRequest.model_validate({"model": "m", **fields})


def answer(text: str = "hi", finish: str = "stop", n: int = 1) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
            for i in range(n)
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_the_key_ignores_only_what_cannot_change_the_answer() -> None:
    base = request_key("t", body())
    same = [
        body(stream=True, stream_options={"include_usage": True}),
        body(user="someone-else"),
        body(metadata={"chat": "42"}),
    ]
    assert all(request_key("t", b) == base for b in same)
    different = [
        body(temperature=0.0001),
        body(seed=1),
        body(max_tokens=5),
        body(n=2),
        body(stop=["x"]),
        body(top_p=0.5),
        body(response_format={"type": "json_object"}),
        body(messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "hello"}]),
        body(messages=[{"role": "user", "content": "hello "}]),
        ChatCompletionRequest.model_validate(
            {"model": "other", "temperature": 0, "messages": [{"role": "user", "content": "hello"}]}
        ),
    ]
    keys = {request_key("t", b) for b in different}
    assert base not in keys and len(keys) == len(different)
    assert request_key("u", body()) != base
    # a tenant whose name starts like another's never shares its key space
    assert not request_key("ab", body()).startswith(request_key("a", body()).split(":")[0] + ":")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", (True, True)),
        ("no-cache", (False, True)),
        ("No-Store", (False, False)),
        ("max-age=0, no-store", (False, False)),
        ("private, no-cache", (False, True)),
    ],
)
def test_cache_control(header: str, expected: tuple[bool, bool]) -> None:
    assert cache_control(Headers({"cache-control": header} if header else {})) == expected


def cache(**settings_: Any) -> ResponseCache:
    return ResponseCache.from_settings(CacheSettings(**settings_), KEK, "k1")


def lookup(c: ResponseCache, b: ChatCompletionRequest, level: Level = Level.PUBLIC) -> Any:
    return run(c.lookup("t", b, level, NO_HEADERS, filtered=True))


def test_policy_decides_what_is_looked_up() -> None:
    assert lookup(cache(), body()).result == "miss"
    assert lookup(cache(), body(temperature=None)).decision == "bypass:not-deterministic"
    assert lookup(cache(), body(temperature=1, seed=4)).result == "miss"
    assert lookup(cache(mode="all"), body(temperature=None)).result == "miss"
    assert lookup(cache(mode="off"), body()).decision == "bypass:off"
    assert lookup(cache(backend="off"), body()).decision == "bypass:off"
    unfiltered = run(cache().lookup("t", body(), Level.PUBLIC, NO_HEADERS, filtered=False))
    assert unfiltered.decision == "bypass:unfiltered"
    tenants = {"t": {"mode": "off"}}
    assert lookup(cache(tenants=tenants), body()).decision == "bypass:off"


def test_sensitive_answers_are_sealed_or_skipped() -> None:
    c = cache()
    found = lookup(c, body(), Level.CONFIDENTIAL)
    assert found.sealed and found.fill
    assert run(c.fill("t", found, answer("the merger closes friday")))
    raw = run(c.store.get(found.key))
    assert b"merger" not in raw and b"sealed" in raw
    hit = lookup(c, body(), Level.CONFIDENTIAL)
    assert hit.result == "hit" and hit.answer["choices"][0]["message"]["content"].startswith("the")
    skip = lookup(cache(sensitive="skip"), body(), Level.SECRET)
    assert skip.decision == "bypass:sensitive"
    keyless = ResponseCache.from_settings(CacheSettings(), {}, None)
    assert lookup(keyless, body(), Level.CONFIDENTIAL).decision == "bypass:sensitive"
    assert lookup(keyless, body(), Level.INTERNAL).result == "miss"


def test_a_sealed_entry_opens_only_under_its_own_key_and_tenant() -> None:
    sealer = Sealer(KEK, "k1")
    box = orjson.loads(sealer.seal("t", "key-a", b"secret answer") or b"")
    assert sealer.open("t", "key-a", box) == b"secret answer"
    assert sealer.open("t", "key-b", box) is None  # moved to another entry
    assert sealer.open("u", "key-a", box) is None  # another tenant
    rotated = Sealer({"k2": bytes(32)}, "k2")
    assert rotated.open("t", "key-a", box) is None  # its KEK is gone: a miss
    tampered = {**box, "box": box["box"][:-4] + "AAAA"}
    assert sealer.open("t", "key-a", tampered) is None


def test_only_answers_that_ended_by_themselves_count_as_complete() -> None:
    assert complete(answer(), 1)
    assert complete(answer(finish="length"), 1)
    assert not complete(answer(finish="content_filter"), 1)
    assert not complete(answer(finish="tool_calls"), 1)
    assert not complete(answer(n=1), 2)


def test_the_memory_store_expires_and_evicts_the_least_recently_used() -> None:
    async def main() -> None:
        store = MemoryStore(max_entries=2, max_bytes=1024)
        await store.put("a", b"1", 60)
        await store.put("b", b"2", 60)
        assert await store.get("a") == b"1"  # a is now the most recent
        await store.put("c", b"3", 60)
        assert await store.get("b") is None and await store.get("a") == b"1"
        assert store.evictions == 1
        await store.put("d", b"x" * 1000, 60)
        await store.put("f", b"y" * 100, 60)  # past max_bytes: the oldest go until it fits
        assert await store.get("d") is None and await store.get("f") == b"y" * 100
        assert (await store.stats()).bytes == 100
        await store.put("e", b"5", 0.01)
        await asyncio.sleep(0.05)
        assert await store.get("e") is None
        await store.put("huge", b"x" * 2048, 60)  # larger than the whole cache: not kept
        assert await store.get("huge") is None
        await store.put("74:1", b"t", 60)  # tenant "t" is 74 in hex
        await store.put("7475:1", b"tu", 60)
        assert await store.clear("t") == 1
        assert await store.get("7475:1") == b"tu"

    run(main())


def test_semantic_matching_is_off_by_default_and_bounded_by_the_threshold() -> None:
    vectors = {
        "what is the refund policy?": np.array([1.0, 0.0], dtype=np.float32),
        "what's the refund policy": np.array([0.99, 0.141], dtype=np.float32),
        "what is the travel policy?": np.array([0.6, 0.8], dtype=np.float32),
    }

    async def embed(text: str) -> Any:
        return vectors[text]

    def ask(c: ResponseCache, text: str, system: str = "s") -> Any:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": text}]
        return lookup(c, body(messages=messages))

    plain = ResponseCache.from_settings(CacheSettings(), KEK, "k1", embed=embed)
    first = ask(plain, "what is the refund policy?")
    run(plain.fill("t", first, answer("30 days")))
    assert ask(plain, "what's the refund policy").result == "miss"  # off by default

    c = ResponseCache.from_settings(CacheSettings(semantic_threshold=0.95), KEK, "k1", embed=embed)
    first = ask(c, "what is the refund policy?")
    assert run(c.fill("t", first, answer("30 days")))
    close = ask(c, "what's the refund policy")
    assert close.result == "hit" and close.similarity == pytest.approx(0.99, abs=0.01)
    assert close.decision.startswith("hit:semantic:")
    assert ask(c, "what is the travel policy?").result == "miss"  # 0.6: below the threshold
    assert ask(c, "what's the refund policy", system="other").result == "miss"  # namespace
    multi = body(
        messages=[
            {"role": "user", "content": "what is the refund policy?"},
            {"role": "assistant", "content": "30 days"},
            {"role": "user", "content": "what's the refund policy"},
        ]
    )
    assert lookup(c, multi).result == "miss"  # single-turn requests only


def test_a_stream_assembles_into_the_completion_it_replays_as() -> None:
    whole = answer("你好，世界 <PHONE_1>", n=2)
    whole["choices"][1]["message"]["tool_calls"] = [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    ]
    assembler = Assembler()
    for chunk in as_chunks(copy.deepcopy(whole), usage=True):
        assembler.add(chunk)
    rebuilt = assembler.completion()
    assert rebuilt is not None
    assert rebuilt["choices"][0]["message"]["content"] == "你好，世界 <PHONE_1>"
    assert (
        rebuilt["choices"][1]["message"]["tool_calls"]
        == whole["choices"][1]["message"]["tool_calls"]
    )
    assert rebuilt["usage"] == whole["usage"]
    broken = Assembler()
    broken.add({"error": {"message": "upstream died"}})
    assert broken.completion() is None


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(min_size=1, max_size=80),
    cuts=st.lists(st.integers(min_value=1, max_value=80), max_size=10),
)
def test_any_chunking_of_a_stream_assembles_to_the_same_text(text: str, cuts: list[int]) -> None:
    points = sorted({c for c in cuts if c < len(text)})
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    assembler = Assembler()
    for piece in pieces:
        assembler.add({"id": "x", "choices": [{"index": 0, "delta": {"content": piece}}]})
    assembler.add({"id": "x", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    rebuilt = assembler.completion()
    assert rebuilt is not None and rebuilt["choices"][0]["message"]["content"] == text
    assert complete(rebuilt, 1)
