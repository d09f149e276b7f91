"""The answer side of filtering: every text an answer carries, guarded, then restored.

An answer carries text in more places than ``content``: each choice's ``refusal``,
a reasoning field (``reasoning_content``, ``reasoning``), and the arguments of its
``tool_calls`` (and the deprecated ``function_call``). Each of those, per choice and
per tool call, is its own :class:`~functions.filtering.output.OutputStream`: checked
by the output guard (lexicons, personal data, system-prompt leak), then restored
from the request's vault. Restored values inside tool-call arguments are escaped
for the JSON string they land in.

A whole answer is one chunk: :meth:`AnswerFilter.apply` feeds each text and
finishes it at once; :meth:`AnswerFilter.chunk` does the same piece by piece and
flushes what a choice still holds back when that choice finishes.
"""

from __future__ import annotations

from typing import Any

import orjson

from functions.filtering.engine import ContentFilter, MaskedConversation, Stage
from functions.filtering.output import OutputStream
from functions.filtering.results import ContentBlockedError

TEXT_FIELDS = ("content", "refusal", "reasoning_content", "reasoning")
_ARGUMENTS = "arguments"
_LEGACY = -2  # the stream key of a legacy ``function_call``'s arguments


def _json_escape(value: str) -> str:
    """``value`` as it must appear between the quotes of a JSON string."""
    return orjson.dumps(value).decode()[1:-1]


class AnswerFilter:
    """One answer's output checks and restore; the chat relay feeds it upstream payloads."""

    def __init__(
        self, content_filter: ContentFilter, conversation: MaskedConversation, stage: Stage = "both"
    ) -> None:
        self._filter = content_filter
        self._conversation = conversation
        self._stage = stage
        # (choice index, field, tool-call index or -1) -> that text's stream
        self._streams: dict[tuple[int, str, int], OutputStream] = {}

    def _stream(self, choice: int, field: str, call: int = -1) -> OutputStream:
        key = (choice, field, call)
        stream = self._streams.get(key)
        if stream is None:
            escape = _json_escape if field == _ARGUMENTS else None
            stream = self._streams[key] = self._filter.answer_stream(
                self._conversation, escape, self._stage
            )
        return stream

    def _whole(self, choice: int, field: str, text: str, call: int = -1) -> str:
        stream = self._stream(choice, field, call)
        return stream.feed(text) + stream.finish()

    def apply(self, answer: dict[str, Any]) -> None:
        """A whole chat.completion, in place: checked, restored, or cut short as
        ``content_filter``."""
        for choice in answer.get("choices") or []:
            message = choice.get("message") if isinstance(choice, dict) else None
            if not isinstance(message, dict):
                continue
            index = _index(choice)
            try:
                for field in TEXT_FIELDS:
                    if isinstance(message.get(field), str):
                        message[field] = self._whole(index, field, message[field])
                for n, function in _functions(message):
                    function[_ARGUMENTS] = self._whole(index, _ARGUMENTS, function[_ARGUMENTS], n)
            except ContentBlockedError:
                choice["message"] = {"role": "assistant", "content": "", "refusal": None}
                choice["finish_reason"] = "content_filter"

    def chunk(self, chunk: dict[str, Any]) -> dict[str, Any] | None:
        """A streamed chunk with its texts checked and restored; None when nothing is left.

        Raises :class:`ContentBlockedError` when the answer must stop here.
        """
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            return chunk
        kept = [c for c in choices if isinstance(c, dict) and self._choice(c)]
        if not kept and not chunk.get("usage"):
            return None  # all held back: nothing to send yet
        chunk["choices"] = kept
        return chunk

    def _choice(self, choice: dict[str, Any]) -> bool:
        """Filter one streamed choice in place; whether anything of it is left to send."""
        index = _index(choice)
        if not isinstance(choice.get("delta"), dict):
            choice["delta"] = {}
        delta = choice["delta"]
        for field in TEXT_FIELDS:
            if isinstance(delta.get(field), str) and delta[field]:
                delta[field] = self._stream(index, field).feed(delta[field])
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict) and isinstance(function.get(_ARGUMENTS), str):
                    stream = self._stream(index, _ARGUMENTS, _call_index(call))
                    function[_ARGUMENTS] = stream.feed(function[_ARGUMENTS])
        legacy = delta.get("function_call")
        if isinstance(legacy, dict) and isinstance(legacy.get(_ARGUMENTS), str):
            legacy[_ARGUMENTS] = self._stream(index, _ARGUMENTS, _LEGACY).feed(legacy[_ARGUMENTS])
        if choice.get("finish_reason") is not None:
            self._flush(index, delta)
        for field in TEXT_FIELDS:
            if delta.get(field) == "":
                del delta[field]
        if isinstance(delta.get("tool_calls"), list):
            delta["tool_calls"] = [c for c in delta["tool_calls"] if _worth_sending(c)]
            if not delta["tool_calls"]:
                del delta["tool_calls"]
        return bool(delta) or choice.get("finish_reason") is not None

    def _flush(self, index: int, delta: dict[str, Any]) -> None:
        """What the choice ``index`` still holds back, into its last delta."""
        for (choice, field, call), stream in list(self._streams.items()):
            if choice != index:
                continue
            rest = stream.finish()
            del self._streams[(choice, field, call)]
            if not rest:
                continue
            if field != _ARGUMENTS:
                delta[field] = (delta.get(field) or "") + rest
                continue
            if call == _LEGACY:
                legacy = delta.setdefault("function_call", {})
                legacy[_ARGUMENTS] = (legacy.get(_ARGUMENTS) or "") + rest
                continue
            calls = delta.setdefault("tool_calls", [])
            entry = next((c for c in calls if _call_index(c) == call), None)
            if entry is None:
                entry = {"index": call, "function": {_ARGUMENTS: ""}}
                calls.append(entry)
            function = entry.setdefault("function", {})
            function[_ARGUMENTS] = (function.get(_ARGUMENTS) or "") + rest


def _index(choice: dict[str, Any]) -> int:
    index = choice.get("index", 0)
    return index if isinstance(index, int) else 0


def _call_index(call: Any) -> int:
    index = call.get("index", 0) if isinstance(call, dict) else 0
    return index if isinstance(index, int) else 0


def _functions(message: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The function objects of a message's tool calls (and its legacy function call)."""
    found: list[tuple[int, dict[str, Any]]] = []
    for n, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get(_ARGUMENTS), str):
            found.append((n, function))
    legacy = message.get("function_call")
    if isinstance(legacy, dict) and isinstance(legacy.get(_ARGUMENTS), str):
        found.append((_LEGACY, legacy))
    return found


def _worth_sending(call: Any) -> bool:
    """A tool-call delta carries something beyond its index and empty arguments."""
    if not isinstance(call, dict):
        return False
    function = call.get("function")
    named = isinstance(function, dict) and bool(function.get("name"))
    has_arguments = isinstance(function, dict) and bool(function.get(_ARGUMENTS))
    return bool(call.get("id") or call.get("type") or named or has_arguments)
