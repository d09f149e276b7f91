"""Fitting a conversation into a model's context window: estimate, then drop whole turns.

The gateway has no tokenizer for every model, so it estimates, and errs high: the
rate limiter's unit (four characters a token) for ASCII text, two UTF-8 bytes a
token for everything else (a CJK character is about two SmolLM2 tokens), a few
tokens per message for the chat template, all times ``safety_margin``. Measured
on SmolLM2: English prose is 3.1 characters a token, French 2.7, JSON 3.6, Chinese
0.5; the default margin (1.35) covers all four.

A conversation fits when its estimate plus the reserve for the answer is within
the context. When it does not, the ``truncate`` policy drops the oldest turns
first. A turn is a user message and every assistant and tool message after it, so
a tool call and its result go together. Never dropped: system and developer
messages (the operator's prompt), retrieved passages, and the latest turn (the
question, with any tool calls and results after it). The ``error`` policy refuses
the conversation instead (400 ``context_length_exceeded``).

A request without ``max_tokens`` gets "what fits": the context less the prompt's
estimate, at most half the context, so the model never fills the window and the
next turn still has room.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

import orjson

from functions.errors import ContextLengthExceededError
from functions.window.settings import Policy
from functions.wire import ChatCompletionRequest, ChatMessage

PER_MESSAGE = 8  # role markers and separators of a chat template, per message
PER_REQUEST = 32  # the template's framing, and a default system prompt some models add
_KEPT_ROLES = frozenset({"system", "developer"})


def text_tokens(text: str) -> int:
    """Tokens ``text`` may take, before the margin: ASCII at 4 characters, the rest at 2
    UTF-8 bytes a token."""
    ascii_chars = sum(1 for ch in text if ch < "\x80") if not text.isascii() else len(text)
    other_bytes = len(text.encode()) - ascii_chars
    return math.ceil(ascii_chars / 4 + other_bytes / 2)


def message_tokens(message: ChatMessage) -> int:
    tokens = PER_MESSAGE + text_tokens(message.text())
    if message.tool_calls:
        calls = [call.model_dump(exclude_none=True) for call in message.tool_calls]
        tokens += text_tokens(orjson.dumps(calls).decode())
    if message.function_call is not None:
        tokens += text_tokens(message.function_call.model_dump_json())
    return tokens


def request_tokens(body: ChatCompletionRequest) -> int:
    """What the request carries besides its messages: tool definitions, a schema."""
    tokens = PER_REQUEST
    if body.tools:
        tools = [tool.model_dump(exclude_none=True, by_alias=True) for tool in body.tools]
        tokens += text_tokens(orjson.dumps(tools).decode())
    if body.response_format is not None:
        tokens += text_tokens(body.response_format.model_dump_json(by_alias=True))
    return tokens


def turns(messages: Sequence[ChatMessage], kept: Collection[int]) -> list[list[int]]:
    """The droppable turns, oldest first, as message indices (see the module docstring).

    Messages in ``kept`` (retrieved passages) and system and developer messages belong
    to no turn; the latest turn is not returned.
    """
    found: list[list[int]] = []
    for index, message in enumerate(messages):
        if index in kept or message.role in _KEPT_ROLES:
            continue
        if message.role == "user" or not found:
            found.append([index])
        else:
            found[-1].append(index)
    return found[:-1]


@dataclass(frozen=True, slots=True)
class Window:
    """What fitting one request did; rides on the chat context."""

    policy: Policy
    context: int  # the smallest context, in tokens, of the deployments planned
    reserve: int  # tokens kept free for the answer
    margin: float
    prompt: int = 0  # the estimate of the prompt as sent
    dropped: tuple[int, ...] = ()  # messages dropped, as indices of the caller's messages
    turns: int = 0  # how many turns they made
    max_tokens: int | None = None  # filled in: the request had none
    retried: bool = False  # the model still refused it, and fewer turns were sent

    @property
    def decision(self) -> str:
        parts = [f"{self.policy}:{self.prompt}/{self.context}"]
        if self.dropped:
            parts.append(f"dropped={self.turns}:{_ranges(self.dropped)}")
        if self.max_tokens is not None:
            parts.append(f"max_tokens={self.max_tokens}")
        if self.retried:
            parts.append("retried")
        return ":".join(parts)


def _ranges(indices: Sequence[int]) -> str:
    """``[1, 2, 3, 5]`` as ``"1-3,5"``."""
    spans: list[list[int]] = []
    for index in sorted(indices):
        if spans and index == spans[-1][1] + 1:
            spans[-1][1] = index
        else:
            spans.append([index, index])
    return ",".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)


def fit(
    body: ChatCompletionRequest,
    retrieved: Collection[int],
    window: Window,
) -> tuple[ChatCompletionRequest, Window]:
    """``body`` fitted into ``window.context``: the oldest turns dropped (``truncate``) or
    a :class:`ContextLengthExceededError` (``error``), and ``max_tokens`` filled in.

    ``retrieved``: indices of the messages holding retrieved passages. ``window`` is the
    start (or, for a retry, what the first fit did: its ``max_tokens`` was filled in).
    """
    asked = body.token_limit if window.max_tokens is None else None  # the caller's own
    margin = window.margin
    reserve = min(asked or window.reserve, window.reserve, window.context // 2)
    sizes = [message_tokens(m) for m in body.messages]
    raw = request_tokens(body) + sum(sizes)
    room = window.context - reserve
    if math.ceil(raw * margin) > room and window.policy == "error":
        raise ContextLengthExceededError(
            f"This model's maximum context length is {window.context} tokens. However, your "
            f"messages resulted in about {math.ceil(raw * margin)} tokens, and {reserve} are "
            "kept for the answer. Please reduce the length of the messages.",
            param="messages",
        )
    droppable = turns(body.messages, retrieved)
    dropped: list[int] = []
    taken = 0
    while math.ceil(raw * margin) > room and taken < len(droppable):
        dropped += droppable[taken]
        raw -= sum(sizes[i] for i in droppable[taken])
        taken += 1
    total = math.ceil(raw * margin)
    gone = set(dropped)
    messages = [m for i, m in enumerate(body.messages) if i not in gone]
    update: dict[str, object] = {"messages": messages} if gone else {}
    filled = None
    if asked is None and window.context - total >= 1:
        filled = min(window.context - total, max(reserve, window.context // 2))
        update["max_tokens"] = filled
    fitted = body.model_copy(update=update) if update else body
    # in the caller's numbering: retrieved passages come first; earlier fits dropped some
    offset, earlier = len(retrieved), set(window.dropped)
    callers = [i for i in range(len(body.messages) - offset + len(earlier)) if i not in earlier]
    window = replace(
        window,
        prompt=total,
        reserve=reserve,
        dropped=tuple(sorted(earlier | {callers[i - offset] for i in dropped})),
        turns=window.turns + taken,
        max_tokens=filled if filled is not None else window.max_tokens,
    )
    return fitted, window
