"""Reading an upstream's server-sent events in batches, and merging what can be merged.

A gateway that keeps up with its upstream reads one event per network read: a model
streams a token every 10 to 50 ms. One that falls behind (many streams at once, a fast
upstream, a client slow to read) finds many events waiting in each read. Relaying those
one by one costs the same per event as when it kept up, the output guard's scan and the
JSON round trip included, so it stays behind. vLLM's front end does what is done here:
when outputs queue up, it merges them.

* :func:`sse_batches` yields the ``data:`` payloads of an SSE stream grouped by the
  network read that completed them (lines end in CR, LF or CRLF, as the SSE
  specification allows; ``event:``, ``id:`` and comment lines are dropped; the payload of
  an event with several ``data:`` lines is those lines joined by LF).
* :func:`coalesced` merges consecutive chunks of one batch that only add text to the
  same choice of the same completion into one chunk with the text concatenated. A chunk
  with anything else (a role, tool calls, log-probabilities, a finish reason, usage, an
  error, several choices) is kept as it came, in its place.

The merged text is the same text: the output guard releases, redacts and restores the
same characters however the answer is chunked
(``tests/functions/filtering/test_output_stream_property.py``), and a client of an
OpenAI-compatible API may not rely on the chunking. Nothing waits to fill a batch: an
event that arrives alone is relayed at once, so the first token is never held.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterable
from typing import Any

# a line ends at CRLF, CR or LF (one CRLF, not two ends)
_EOL = re.compile(rb"\r\n|\r|\n")
_DATA = b"data:"


class EventDecoder:
    """Incremental SSE decoder: bytes in, complete events' ``data:`` payloads out."""

    def __init__(self) -> None:
        # the reads of an unfinished line, the last maybe ending in a CR (half a CRLF?):
        # kept apart until a line ends, so that a long line over many reads is joined
        # once, not again with every read (linear, not quadratic, in its length)
        self._rest: list[bytes] = []
        self._data: list[bytes] = []  # the current event's data lines

    def feed(self, received: bytes) -> list[bytes]:
        """The payloads of the events that ``received`` completed."""
        held_cr = bool(self._rest) and self._rest[-1].endswith(b"\r")
        if not held_cr and b"\n" not in received and b"\r" not in received:
            if received:
                self._rest.append(received)
            return []
        text = b"".join([*self._rest, received])
        cr = text.endswith(b"\r")  # the LF of its CRLF may come in the next read
        lines = _EOL.split(text[:-1] if cr else text)
        rest = lines.pop() + (b"\r" if cr else b"")
        self._rest = [rest] if rest else []
        return self._events(lines)

    def finish(self) -> list[bytes]:
        """The payload of an event the stream ended without a blank line after."""
        lines = _EOL.split(b"".join(self._rest)) if self._rest else []
        self._rest = []
        return self._events([*lines, b""])

    def _events(self, lines: list[bytes]) -> list[bytes]:
        payloads: list[bytes] = []
        data = self._data
        for line in lines:
            if line.startswith(_DATA):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
            elif not line and data:
                payloads.append(b"\n".join(data))
                data.clear()
        return payloads


async def sse_batches(received: AsyncIterable[bytes]) -> AsyncGenerator[list[bytes]]:
    """The ``data:`` payloads of an SSE byte stream, one list per read that completed any."""
    decoder = EventDecoder()
    async for part in received:
        batch = decoder.feed(part)
        if batch:
            yield batch
    rest = decoder.finish()
    if rest:
        yield rest


# a chunk, and its bytes as they came (None once it was changed)
Event = tuple[dict[str, Any], bytes | None]


def coalesced(events: list[Event]) -> list[Event]:
    """``events`` with each run of text-only deltas to one choice merged into its first.

    A chunk that is merged into is copied, never changed in place, and loses its bytes;
    a chunk that is kept keeps them, so they can be passed on as they came.
    """
    out: list[Event] = []
    joinable = False  # out[-1] only adds text: the next chunk of its choice may join it
    copied = False  # out[-1] is a copy already joined into, not the chunk as read
    for chunk, raw in events:
        text = _text_only(chunk)
        if text is None or not joinable or not _same(out[-1][0], chunk):
            out.append((chunk, raw))
            joinable, copied = text is not None, False
            continue
        last = out[-1][0]
        if not copied:
            last = _copy(last)
            out[-1] = (last, None)
            copied = True
        delta = last["choices"][0]["delta"]
        delta["content"] = (delta.get("content") or "") + text
    return out


_CHOICE_KEYS = frozenset({"index", "delta", "finish_reason", "logprobs"})


def _text_only(chunk: dict[str, Any]) -> str | None:
    """The text of a chunk that adds text to one choice and says nothing else; else None."""
    if chunk.get("usage") is not None or "error" in chunk:
        return None
    choices = chunk.get("choices")
    if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
        return None
    choice = choices[0]
    if not choice.keys() <= _CHOICE_KEYS:
        return None
    if choice.get("finish_reason") is not None or choice.get("logprobs") is not None:
        return None
    delta = choice.get("delta")
    if not isinstance(delta, dict) or not delta.keys() <= {"content"}:
        return None
    content = delta.get("content")
    return content if isinstance(content, str) else None


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether ``b`` continues ``a``'s choice: everything but the delta is equal."""
    if a.keys() != b.keys():
        return False
    for key in a:
        if key != "choices" and a[key] != b[key]:
            return False
    return bool(a["choices"][0].get("index") == b["choices"][0].get("index"))


def _copy(chunk: dict[str, Any]) -> dict[str, Any]:
    choice = chunk["choices"][0]
    return {**chunk, "choices": [{**choice, "delta": dict(choice["delta"])}]}
