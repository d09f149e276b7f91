"""A chat answer in its two shapes: a whole ``chat.completion`` and a stream of chunks.

The cache keeps one shape, the whole completion, so that a question asked plainly
and the same question streamed share an entry: :class:`Assembler` builds the
completion from a stream as it passes, :func:`as_chunks` replays a completion as
a stream, in the chunk shape upstreams send.
"""

from __future__ import annotations

from typing import Any

from functions.filtering.answer import TEXT_FIELDS

# an answer worth keeping ended by itself: not cut by a filter, not a tool call
COMPLETE = frozenset({"stop", "length"})


class Assembler:
    """Collects streamed chunks into the ``chat.completion`` they add up to."""

    def __init__(self) -> None:
        self._head: dict[str, Any] | None = None
        self._choices: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] | None = None
        self.broken = False  # an error event, or a chunk of a shape we do not know

    def add(self, chunk: dict[str, Any]) -> None:
        """Read ``chunk`` now: the caller may change it afterwards."""
        if "error" in chunk:
            self.broken = True
            return
        if self._head is None:
            self._head = {k: chunk[k] for k in ("id", "created", "model") if k in chunk}
        if isinstance(chunk.get("usage"), dict):
            self.usage = dict(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or not isinstance(choice.get("index", 0), int):
                self.broken = True
                continue
            state = self._choices.setdefault(
                choice.get("index", 0), {"texts": {}, "calls": {}, "finish_reason": None}
            )
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict):
                self.broken = True
                continue
            for field in TEXT_FIELDS:
                if isinstance(delta.get(field), str):
                    state["texts"].setdefault(field, []).append(delta[field])
            for call in delta.get("tool_calls") or []:
                self._call(state, call)
            if choice.get("finish_reason") is not None:
                state["finish_reason"] = choice["finish_reason"]

    def _call(self, state: dict[str, Any], call: Any) -> None:
        if not isinstance(call, dict) or not isinstance(call.get("index", 0), int):
            self.broken = True
            return
        entry = state["calls"].setdefault(
            call.get("index", 0), {"id": None, "type": "function", "name": "", "arguments": []}
        )
        entry["id"] = call.get("id") or entry["id"]
        entry["type"] = call.get("type") or entry["type"]
        function = call.get("function") or {}
        if isinstance(function, dict):
            entry["name"] += function.get("name") or ""
            if isinstance(function.get("arguments"), str):
                entry["arguments"].append(function["arguments"])

    def completion(self) -> dict[str, Any] | None:
        """The whole answer, or None if the stream did not add up to one."""
        if self.broken or self._head is None or not self._choices:
            return None
        choices = []
        for index in sorted(self._choices):
            state = self._choices[index]
            message: dict[str, Any] = {"role": "assistant", "content": None}
            for field, parts in state["texts"].items():
                message[field] = "".join(parts)
            if state["calls"]:
                message["tool_calls"] = [
                    {
                        "id": call["id"],
                        "type": call["type"],
                        "function": {"name": call["name"], "arguments": "".join(call["arguments"])},
                    }
                    for _, call in sorted(state["calls"].items())
                ]
            choices.append(
                {"index": index, "message": message, "finish_reason": state["finish_reason"]}
            )
        answer = {**self._head, "object": "chat.completion", "choices": choices}
        if self.usage is not None:
            answer["usage"] = self.usage
        return answer


def complete(answer: dict[str, Any], choices: int) -> bool:
    """Whether ``answer`` has all ``choices`` and each ended by itself."""
    found = answer.get("choices")
    if not isinstance(found, list) or len(found) != choices:
        return False
    return all(isinstance(c, dict) and c.get("finish_reason") in COMPLETE for c in found)


def as_chunks(answer: dict[str, Any], *, usage: bool) -> list[dict[str, Any]]:
    """``answer`` as the chunks of a stream: per choice its texts, then its finish."""
    head = {
        "id": answer.get("id"),
        "object": "chat.completion.chunk",
        "created": answer.get("created"),
        "model": answer.get("model"),
    }
    chunks: list[dict[str, Any]] = []
    for choice in answer.get("choices") or []:
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": "assistant"}
        for field in TEXT_FIELDS:
            if isinstance(message.get(field), str) and message[field]:
                delta[field] = message[field]
        if message.get("tool_calls"):
            delta["tool_calls"] = [
                {"index": n, **call} for n, call in enumerate(message["tool_calls"])
            ]
        index = choice.get("index", 0)
        chunks.append(
            {**head, "choices": [{"index": index, "delta": delta, "finish_reason": None}]}
        )
        finish = {"index": index, "delta": {}, "finish_reason": choice.get("finish_reason")}
        chunks.append({**head, "choices": [finish]})
    if usage and isinstance(answer.get("usage"), dict):
        chunks.append({**head, "choices": [], "usage": answer["usage"]})
    return chunks
