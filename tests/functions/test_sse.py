"""Reading an upstream's SSE stream in batches, and merging text-only chunks of a batch.

The decoder is checked against how the stream was written, cut at every place a network
read could end (a CRLF split in two, a multi-byte character split, an event over many
reads); the merge against the text it must keep and the chunks it must leave alone.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from functions.sse import Event, EventDecoder, coalesced, sse_batches

EOLS = (b"\n", b"\r\n", b"\r")

# a payload: one or more data lines (no line end inside a line)
line_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12)
payloads = st.lists(st.lists(line_text, min_size=1, max_size=3), min_size=0, max_size=8)


def written(events: list[list[str]], eol: bytes, noise: bool) -> bytes:
    """The SSE bytes of ``events``, each line ended by ``eol``. (Mixed line ends are
    legal too, but a CR end followed by an LF end reads as one CRLF, as it should.)"""
    out, i = [], 0

    def end() -> bytes:
        nonlocal i
        i += 1
        return eol

    for lines in events:
        if noise:
            out += [b": keep-alive", end(), b"event: message", end(), b"id: 7", end()]
        for line in lines:
            spaced = i % 2 or line.startswith(" ")  # "data:" drops one space, if any
            out += [b"data: " if spaced else b"data:", line.encode(), end()]
        out.append(end())  # the blank line that ends the event
    return b"".join(out)


def decoded(stream: bytes, cuts: list[int]) -> list[list[bytes]]:
    decoder, batches, start = EventDecoder(), [], 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        batch = decoder.feed(stream[start:cut])
        if batch:
            batches.append(batch)
        start = cut
    rest = decoder.finish()
    return [*batches, rest] if rest else batches


@given(
    payloads,
    st.sampled_from(EOLS),
    st.booleans(),
    st.lists(st.integers(0, 400), max_size=12),
)
def test_every_event_comes_out_whole_however_the_reads_cut_the_stream(
    events: list[list[str]], eol: bytes, noise: bool, cuts: list[int]
) -> None:
    stream = written(events, eol, noise)
    batches = decoded(stream, [c for c in cuts if c <= len(stream)])
    expected = [b"\n".join(line.encode() for line in lines) for lines in events]
    assert [p for batch in batches for p in batch] == expected


def test_a_crlf_split_between_two_reads_is_one_line_end() -> None:
    """Taken as CR then LF, it would be a blank line and end the event early."""
    assert decoded(b"data: a\r\ndata: b\r\n\r\n", [8]) == [[b"a\nb"]]


def test_the_last_event_counts_without_its_blank_line() -> None:
    assert decoded(b"data: one\n\ndata: two", []) == [[b"one"], [b"two"]]
    assert decoded(b"data: one\n\ndata: two\r", [5]) == [[b"one"], [b"two"]]


def test_a_batch_is_what_one_read_completed() -> None:
    async def reads() -> AsyncIterator[bytes]:
        yield b"data: 1\n\ndata: 2\n\ndata: 3"  # two whole events, and half a third
        yield b"\n\n"
        yield b"data: 4\n\n"

    async def collect() -> list[list[bytes]]:
        return [batch async for batch in sse_batches(reads())]

    assert asyncio.run(collect()) == [[b"1", b"2"], [b"3"], [b"4"]]


def chunk(delta: dict[str, Any], finish: str | None = None, **top: Any) -> dict[str, Any]:
    return {
        "id": top.get("id", "c1"),
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": top.get("index", 0), "delta": delta, "finish_reason": finish}],
    }


def ev(c: dict[str, Any]) -> Event:
    return (c, b"raw-" + str(id(c)).encode())


def texts(events: list[Event]) -> list[str | None]:
    return [c["choices"][0]["delta"].get("content") if c["choices"] else None for c, _ in events]


def test_text_only_chunks_of_one_batch_are_merged_and_lose_their_bytes() -> None:
    events = [ev(chunk({"content": t})) for t in ("Hel", "lo", ", wor", "ld")]
    before = copy.deepcopy(events)
    (merged,) = coalesced(events)
    assert merged[0]["choices"][0]["delta"] == {"content": "Hello, world"}
    assert merged[1] is None  # changed: serialised afresh
    assert events == before  # the chunks read are not changed in place


def test_chunks_that_say_more_than_text_stay_in_their_place() -> None:
    role = ev(chunk({"role": "assistant", "content": ""}))
    tool = ev(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]}))
    logprobs = chunk({"content": "x"})
    logprobs["choices"][0]["logprobs"] = {"content": []}
    usage = chunk({"content": "u"})
    usage["usage"] = {"total_tokens": 3}
    two = chunk({"content": "a"})
    two["choices"].append({"index": 1, "delta": {"content": "b"}, "finish_reason": None})
    events = [
        role,
        ev(chunk({"content": "a"})),
        ev(chunk({"content": "b"})),
        tool,
        ev(chunk({"content": "c"})),
        ev(logprobs),
        ev(usage),
        ev(two),
        ev(chunk({"content": "d"})),
        ev(chunk({"content": "e"}, index=1)),  # another choice
        ev(chunk({"content": "f"}, id="c2")),  # another completion
        ev(chunk({"content": "g"}, id="c2")),
        ev(chunk({}, "stop", id="c2")),
    ]
    out = coalesced(events)
    assert texts(out) == ["", "ab", None, "c", "x", "u", "a", "d", "e", "fg", None]
    kept = [e for e in out if e[1] is not None]
    assert all(e in events for e in kept)  # kept as they came, bytes and all
    assert [e[1] is None for e in out].count(True) == 2  # "ab" and "fg"


@given(st.lists(st.sampled_from(["text", "role", "tool", "stop"]), max_size=20))
def test_the_text_of_every_choice_is_unchanged(kinds: list[str]) -> None:
    made = {
        "text": lambda i: chunk({"content": f"t{i}"}),
        "role": lambda i: chunk({"role": "assistant", "content": f"r{i}"}),
        "tool": lambda i: chunk({"tool_calls": [{"index": 0}]}),
        "stop": lambda i: chunk({}, "stop"),
    }
    events = [ev(made[k](i)) for i, k in enumerate(kinds)]
    out = coalesced(events)
    assert "".join(t or "" for t in texts(out)) == "".join(t or "" for t in texts(events))
    # a merged chunk only ever joins runs of text: kinds other than text keep their places
    assert [k for k in kinds if k != "text"] == [
        k
        for k in (
            "role"
            if "role" in c["choices"][0]["delta"]
            else "tool"
            if "tool_calls" in c["choices"][0]["delta"]
            else "stop"
            if c["choices"][0]["finish_reason"]
            else "text"
            for c, _ in out
        )
        if k != "text"
    ]
