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
4. **citations**: the sources retrieved into the prompt, on the first chunk;
5. **capture**: the text as the client saw it, for the audit record's encrypted copy.

A whole answer and a stream differ only in how the filter treats them (a whole
answer's blocked choice becomes ``content_filter``; a stream is cut off with an
error event), which is :class:`~functions.filtering.answer.AnswerFilter`'s concern.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from functions.cache.answers import Assembler
from functions.filtering.answer import AnswerFilter

Account = Callable[[dict[str, Any]], None]


class AnswerChain:
    def __init__(
        self,
        *,
        whole: bool,
        answer: AnswerFilter | None,
        keep: AnswerFilter | None = None,
        citations: dict[str, Any] | None = None,
        wants_usage: bool = True,
        account: Account | None = None,
        capture: bool = False,
    ) -> None:
        self.whole = whole
        self._keep = keep
        # with a keep stage the answer filter only restores (the keep stage guarded)
        self._filter = answer
        self._citations = citations
        self._wants_usage = whole or wants_usage
        self._account = account
        self._assembler = Assembler() if keep is not None and not whole else None
        self._kept: dict[str, Any] | None = None
        self.usage: dict[str, Any] | None = None
        self.emitted: list[str] | None = [] if capture else None

    @property
    def transparent(self) -> bool:
        """Whether chunks pass unchanged (but for usage and citations): no filter runs."""
        return self._filter is None and self._keep is None

    def __call__(self, chunk: dict[str, Any]) -> dict[str, Any] | None:
        """``chunk`` on its way to the client; None when nothing of it is to be sent yet."""
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
        if self._citations is not None:  # the first chunk carries them
            chunk, self._citations = {**chunk, **self._citations}, None
        if self.emitted is not None:
            self.emitted.append(_text(chunk, self.whole))
        return chunk

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
