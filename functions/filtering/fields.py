"""Every field of a chat request that can carry text, found, masked and put back.

    messages[].content             text and refusal parts; image, audio and file parts are
                                   counted as unreadable (the policy classifies them)
    messages[].name, .refusal
    messages[].tool_calls[].function.arguments, messages[].function_call.arguments
                                   parsed as JSON where they are JSON, masked value by value
    tools[].function.description, .parameters   every string: descriptions, defaults, enums
    response_format.json_schema.description, .schema
    user, metadata values

The request is walked in one fixed order, so the same request always gets the same
placeholders. Strings that share a message and the same treatment are scanned together,
joined by :data:`SEP` (one scan instead of one per tool description: frontends send 30+
tools with every chat), and split again; a batch whose masking crosses a separator is
scanned string by string instead.

Injection is scored on what users and tools say (the content of user, tool and function
messages). Values found in system and developer messages and in retrieved passages are
masked like the rest but are not *restorable*: no answer gets them back (invariant I3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from functions.filtering.results import FilterResult
from functions.wire import MAX_SCHEMA_DEPTH, ChatCompletionRequest, json_depth

SEP = "\n|\n"
_INJECTION_ROLES = frozenset({"user", "tool", "function"})
_OPERATOR_ROLES = frozenset({"system", "developer"})
_UNREADABLE = frozenset({"image_url", "input_audio", "file"})

# scan(text, score_injection, restorable, message index) -> the text's result, masked with
# the shared vault
Scan = Callable[[str, bool, bool, int | None], FilterResult]


@dataclass(frozen=True, slots=True)
class _Group:
    message: int | None  # index of the message the strings belong to, if any
    injection: bool
    restorable: bool


@dataclass(slots=True)
class _Slot:
    container: Any  # the dict or list holding the string
    key: Any


@dataclass(slots=True)
class Walk:
    """One request's strings, grouped by treatment; :meth:`mask` writes them back masked."""

    data: dict[str, Any]
    groups: dict[_Group, list[_Slot]] = field(default_factory=dict)
    # JSON arguments parsed for masking, re-encoded once their strings are masked
    encoded: list[tuple[_Slot, Any]] = field(default_factory=list)

    def add(self, group: _Group, container: Any, key: Any) -> None:
        if isinstance(container[key], str) and container[key]:
            self.groups.setdefault(group, []).append(_Slot(container, key))

    def tree(self, group: _Group, node: Any) -> None:
        """Every string value in a JSON tree (its depth is bounded by the wire types)."""
        stack = [node]
        while stack:
            current = stack.pop()
            items = current.items() if isinstance(current, dict) else enumerate(current)
            for key, value in items:
                if isinstance(value, str):
                    self.add(group, current, key)
                elif isinstance(value, dict | list):
                    stack.append(value)

    def arguments(self, group: _Group, container: dict[str, Any]) -> None:
        """A function call's arguments: JSON value by value, else the whole text."""
        try:
            parsed = orjson.loads(container["arguments"])
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict | list) and json_depth(parsed, MAX_SCHEMA_DEPTH) <= (
            MAX_SCHEMA_DEPTH
        ):
            self.tree(group, parsed)
            self.encoded.append((_Slot(container, "arguments"), parsed))
        else:
            self.add(group, container, "arguments")

    def mask(self, scan: Scan) -> list[FilterResult]:
        """Scan every group, write the masked strings back; the results."""
        results: list[FilterResult] = []
        for group, slots in self.groups.items():
            texts = [slot.container[slot.key] for slot in slots]
            masked, found = _scan_batch(texts, scan, group)
            for slot, text in zip(slots, masked, strict=True):
                slot.container[slot.key] = text
            results += found
        for slot, parsed in self.encoded:
            slot.container[slot.key] = orjson.dumps(parsed).decode()
        return results

    def injection_texts(self) -> list[str]:
        """The texts :meth:`mask` scores for injection (those of user, tool and function
        messages, one per message where its strings can be joined): what injection stage
        2 may be asked to read, to be prepared before the scan."""
        texts: list[str] = []
        for group, slots in self.groups.items():
            if not group.injection:
                continue
            parts = [str(slot.container[slot.key]) for slot in slots]
            joined = len(parts) > 1 and not any(SEP in part for part in parts)
            texts += [SEP.join(parts)] if joined else parts
        return texts


def _scan_batch(
    texts: list[str], scan: Scan, group: _Group
) -> tuple[list[str], list[FilterResult]]:
    """``texts`` masked, in one scan when they can be joined and split again."""
    if len(texts) > 1 and not any(SEP in text for text in texts):
        result = scan(SEP.join(texts), group.injection, group.restorable, group.message)
        parts = result.masked_text.split(SEP)
        if len(parts) == len(texts):
            return parts, [result]
    results = [scan(text, group.injection, group.restorable, group.message) for text in texts]
    return [r.masked_text for r in results], results


def walk(body: ChatCompletionRequest, retrieved: frozenset[int]) -> Walk:
    """The request as plain data, with every string that can carry text found in it."""
    data = body.model_dump(exclude_none=True, by_alias=True)
    found = Walk(data)
    for index, message in enumerate(data["messages"]):
        operator = message["role"] in _OPERATOR_ROLES or index in retrieved
        said = _Group(index, message["role"] in _INJECTION_ROLES, not operator)
        quiet = _Group(index, False, not operator)
        content = message.get("content")
        if isinstance(content, str):
            found.add(said, message, "content")
        for part in content if isinstance(content, list) else ():
            for key in ("text", "refusal"):
                if key in part:
                    found.add(said, part, key)
        for key in ("name", "refusal"):
            if key in message:
                found.add(quiet, message, key)
        for call in message.get("tool_calls", ()):
            found.arguments(quiet, call["function"])
        if "function_call" in message:
            found.arguments(quiet, message["function_call"])
    request = _Group(None, False, True)
    for tool in data.get("tools", ()):
        function = tool["function"]
        if "description" in function:
            found.add(request, function, "description")
        if "parameters" in function:
            found.tree(request, function["parameters"])
    schema = data.get("response_format", {}).get("json_schema")
    if schema is not None:
        if "description" in schema:
            found.add(request, schema, "description")
        if "schema" in schema:
            found.tree(request, schema["schema"])
    if "user" in data:
        found.add(request, data, "user")
    if "metadata" in data:
        found.tree(request, data["metadata"])
    return found


def unreadable_parts(body: ChatCompletionRequest) -> int:
    """How many image, audio and file parts the request carries."""
    return sum(
        part.type in _UNREADABLE
        for message in body.messages
        if isinstance(message.content, list)
        for part in message.content
    )
