"""An answer's way back to the client: one chain of per-chunk transforms.

A streamed answer passes through it chunk by chunk; a whole answer passes through
it once, as a single chunk. In order:

1. **usage**: counted (the tokens metric), and dropped from a stream whose client
   did not ask for it (the gateway always asks the upstream, to count);
2. **keep**: when the answer is to fill the response cache, the output guard runs
   alone first and what it lets through is kept (placeholders, never a caller's
   value), assembled from a stream's chunks or copied from a whole answer;
3. **guard and restore**: the output guard, then the restore of the caller's values
   (just the restore when *keep* has guarded already);
4. **citations**: the sources retrieved into the prompt: Enclave's field on the
   first chunk, and/or the Markdown *Sources* block (:class:`Sources`) at the end
   of each choice that ended by itself: appended to a whole answer's content, sent
   in a stream as a content chunk of its own just before the finish chunk;
5. **capture**: the text as the client saw it, for the audit record's encrypted copy.

The Sources block comes after *keep*, so the cache keeps the answer without it and
a replay gets the block of its own retrieval, once. It is guarded and restored by
an answer filter of its own, as the answer's text is (a title is a document
author's text).

A whole answer and a stream differ only in how the filter treats them (a whole
answer's blocked choice becomes ``content_filter``; a stream is cut off with an
error event), which is :class:`~functions.filtering.answer.AnswerFilter`'s concern.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from functions.cache.answers import COMPLETE, Assembler
from functions.filtering.answer import AnswerFilter
from functions.knowledge.prompting import sources_block
from functions.wire import CitationStyle

Account = Callable[[dict[str, Any]], None]
_CITED_TEXTS = ("title", "source", "location")


class Cited:
    """The sources retrieved into the prompt, as this answer shows them (``style``).

    Their titles, paths and places are a document author's text: each passes once
    through an answer filter of its own (guard, then restore), as the answer's text
    does. A text the guard would block is shown as ``[REDACTED]``: a title ends no answer.
    """

    def __init__(
        self,
        citations: Sequence[Mapping[str, Any]],
        style: CitationStyle,
        answer: AnswerFilter | None,
    ) -> None:
        self.style = style
        self._citations = citations
        self._answer = answer
        self._guarded: list[dict[str, Any]] | None = None

    def guarded(self) -> list[dict[str, Any]]:
        if self._guarded is None:
            cited = [dict(c) for c in self._citations]
            texts = [(c, k) for c in cited for k in _CITED_TEXTS if isinstance(c.get(k), str)]
            if self._answer is not None and texts:
                choices: list[dict[str, Any]] = [
                    {"index": n, "message": {"content": c[k]}, "finish_reason": None}
                    for n, (c, k) in enumerate(texts)
                ]
                self._answer.apply({"choices": choices})
                for (c, k), choice in zip(texts, choices, strict=True):
                    blocked = choice["finish_reason"] == "content_filter"
                    c[k] = "[REDACTED]" if blocked else str(choice["message"]["content"])
            self._guarded = cited
        return self._guarded

    def field(self) -> dict[str, Any] | None:
        """Enclave's response field, unless the style is Markdown only."""
        return None if self.style == "markdown" else {"enclave": {"citations": self.guarded()}}

    def block(self) -> str | None:
        """The Markdown Sources block, unless the style is the field only."""
        return None if self.style == "field" else sources_block(self.guarded())


class AnswerChain:
    def __init__(
        self,
        *,
        whole: bool,
        answer: AnswerFilter | None,
        keep: AnswerFilter | None = None,
        citations: Cited | None = None,
        wants_usage: bool = True,
        account: Account | None = None,
        capture: bool = False,
    ) -> None:
        self.whole = whole
        self._keep = keep
        # with a keep stage the answer filter only restores (the keep stage guarded)
        self._filter = answer
        self._citations = citations
        self._field = citations is not None and citations.style != "markdown"  # not sent yet
        self._sources = citations.block() if citations and citations.style != "field" else None
        self._calling: set[int] = set()  # streamed choices that called tools: no Sources
        self._wants_usage = whole or wants_usage
        self._account = account
        self._assembler = Assembler() if keep is not None and not whole else None
        self._kept: dict[str, Any] | None = None
        self.usage: dict[str, Any] | None = None
        self.emitted: list[str] | None = [] if capture else None

    @property
    def transparent(self) -> bool:
        """Whether chunks pass unchanged (but for usage and citations): no filter runs."""
        return self._filter is None and self._keep is None and self._sources is None

    def __call__(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """What to send the client for ``chunk`` now: nothing, the chunk, or (a stream's
        finish with a Sources block) a content chunk and then the finish."""
        out = self._one(chunk)
        if out is None:
            return []
        sent = self._cited(out)
        if self.emitted is not None:
            self.emitted.extend(_text(part, self.whole) for part in sent)
        return sent

    def _one(self, chunk: dict[str, Any]) -> dict[str, Any] | None:
        if isinstance(chunk.get("usage"), dict) and chunk["usage"]:
            self.usage = chunk["usage"]
            if self._account is not None:
                self._account(chunk["usage"])
            if not self._wants_usage:  # asked for our accounting, not the client's
                if not chunk.get("choices"):
                    return None
                chunk = {k: v for k, v in chunk.items() if k != "usage"}
        if self._keep is not None:
            out = self._through(self._keep, chunk)
            if out is None:
                return None
            chunk = out
            if self._assembler is not None:
                self._assembler.add(chunk)
            else:  # a whole answer: copied before the restore writes values into it
                self._kept = orjson.loads(orjson.dumps(chunk))
        if self._filter is not None:
            out = self._through(self._filter, chunk)
            if out is None:
                return None
            chunk = out
        if self._field and self._citations is not None:  # the first chunk carries them
            chunk, self._field = {**chunk, **(self._citations.field() or {})}, False
        return chunk

    def _cited(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """``chunk`` with the Sources block after the text of each choice it finishes."""
        if self._sources is None:
            return [chunk]
        if self.whole:
            for choice in _choices(chunk):
                message = choice.get("message")
                if isinstance(message, dict) and _sourced(choice, message):
                    message["content"] = (message.get("content") or "") + self._sources
            return [chunk]
        texts: list[dict[str, Any]] = []
        for choice in _choices(chunk):
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue
            if delta.get("tool_calls") or delta.get("function_call"):
                self._calling.add(_index(choice))
            if _index(choice) in self._calling or not _sourced(choice, delta):
                continue
            held = delta.pop("content", None) or ""  # what the guard held back comes first
            content = {"content": held + self._sources}
            texts.append({"index": _index(choice), "delta": content, "finish_reason": None})
        if not texts:
            return [chunk]
        head = {k: v for k, v in chunk.items() if k not in ("choices", "usage", "enclave")}
        first = {**head, "choices": texts}
        if "enclave" in chunk:  # the field rides on the first chunk sent
            first["enclave"] = chunk.pop("enclave")
        return [first, chunk]

    def _through(self, stage: AnswerFilter, chunk: dict[str, Any]) -> dict[str, Any] | None:
        if self.whole:
            stage.apply(chunk)
            return chunk
        return stage.chunk(chunk)

    def kept(self) -> dict[str, Any] | None:
        """The guarded, unrestored answer for the cache (None if none was kept)."""
        if self._assembler is not None:
            answer = self._assembler.completion()
            if answer is not None and self.usage is not None:
                answer["usage"] = self.usage
            return answer
        return self._kept


def _text(chunk: dict[str, Any], whole: bool) -> str:
    choices = chunk.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return ""
    part = choices[0].get("message" if whole else "delta") or {}
    return str(part.get("content") or "") if isinstance(part, dict) else ""


def _choices(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in chunk.get("choices") or [] if isinstance(c, dict)]


def _index(choice: dict[str, Any]) -> int:
    index = choice.get("index", 0)
    return index if isinstance(index, int) else 0


def _sourced(choice: dict[str, Any], part: dict[str, Any]) -> bool:
    """Whether a choice gets the Sources block here: it ended by itself, with text."""
    called = part.get("tool_calls") or part.get("function_call")
    return choice.get("finish_reason") in COMPLETE and not called
