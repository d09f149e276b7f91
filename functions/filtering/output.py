"""Checks on a streamed answer: lexicon hits, personal data, system-prompt leakage.

:class:`OutputGuard` sits between the model's stream and the client. It holds back
a small window of text (``hold_back_chars``, 48 by default) so that a term, a
number or an email that straddles two chunks is seen whole before any of it is
emitted. The window never ends inside an ASCII token (a number with separators,
an email, a key: up to 256 characters) nor inside an unterminated
``-----BEGIN … PRIVATE KEY-----`` block, and never inside a detection.

What it finds, it acts on per the output policy: ``mask`` becomes an irreversible
``[REDACTED:PHONE]`` (never a ``<PHONE_n>`` placeholder: those would be restored
from the conversation's vault, to the wrong value), ``block`` raises
:class:`~functions.filtering.results.ContentBlockedError`, which the relay turns
into a final error event. :class:`LeakDetector` blocks an answer that repeats a
run of ``leak_ngram_chars`` characters of the system prompt verbatim (compared
without whitespace and punctuation, after normalisation).

:class:`OutputStream` composes the two steps in the one safe order: guard the
model's text (with placeholders still in it), then restore the placeholders.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from functions.filtering.classify import Level
from functions.filtering.masking import StreamRestorer
from functions.filtering.normalise import Normalised, normalise
from functions.filtering.results import ContentBlockedError, Detection, Hit

_MAX_TOKEN = 256
_TOKEN = frozenset("0123456789abcdefghijklmnopqrstuvwxyz@._%+-:/=~()")
_SQUASH = re.compile(r"[\W_]+")

Detect = Callable[[Normalised], list[Hit]]


class LeakDetector:
    """Finds verbatim runs of the system prompt in a stream, chunk by chunk."""

    def __init__(self, system_prompt: str, ngram: int) -> None:
        squashed = _SQUASH.sub("", normalise(system_prompt).text)
        self.n = min(ngram, len(squashed)) if len(squashed) >= 12 else 0
        n = self.n
        self._grams = {squashed[i : i + n] for i in range(len(squashed) - n + 1)} if n else set()
        self._tail = ""

    def feed(self, chunk: str) -> bool:
        """Whether the stream, up to and including ``chunk``, repeats the prompt."""
        if not self.n:
            return False
        text = self._tail + _SQUASH.sub("", normalise(chunk).text)
        n, grams = self.n, self._grams
        leaked = any(text[i : i + n] in grams for i in range(len(text) - n + 1))
        self._tail = text[max(0, len(text) - n + 1) :]
        return leaked


class OutputGuard:
    """Checks a streamed answer; ``feed`` returns the text safe to emit now."""

    def __init__(self, detect: Detect, *, window: int, leak: LeakDetector | None = None) -> None:
        self._detect = detect
        self._window = max(window, leak.n if leak else 0)
        self._leak = leak
        self._pending = ""  # what the last release held back
        self._incoming: list[str] = []  # chunks fed since (joined once, at the next release)
        self._size = 0  # len(_pending) + len of every incoming chunk
        self._stalled = 0  # no release until _size reaches this (see _release)
        self._offset = 0  # original offset of _pending[0] in the whole answer
        self._detections: list[Detection] = []

    @property
    def detections(self) -> list[Detection]:
        """What was found so far; offsets are in the model's answer as generated."""
        return list(self._detections)

    def feed(self, chunk: str) -> str:
        if self._leak is not None and self._leak.feed(chunk):
            at = self._offset + self._size
            self._block(
                Detection(
                    type="SYSTEM_PROMPT_LEAK",
                    start=at,
                    end=at + len(chunk),
                    action="block",
                    source="leak",
                    rule="ngram",
                    level=Level.SECRET,
                )
            )
        self._incoming.append(chunk)
        self._size += len(chunk)
        # release as soon as anything is past the window (or, stalled, once the text doubled)
        if self._size <= max(self._window, self._stalled):
            return ""
        return self._release(final=False)

    def finish(self) -> str:
        return self._release(final=True)

    def _block(self, detection: Detection) -> None:
        self._detections.append(detection)
        raise ContentBlockedError.of([detection])

    def _release(self, final: bool) -> str:
        text = self._pending = self._pending + "".join(self._incoming)
        self._incoming.clear()
        norm = normalise(text)
        hits = self._detect(norm)
        cut = len(text) if final else _safe_cut(norm, len(text) - self._window)
        for hit in hits:
            if hit.start < cut < hit.end:
                cut = hit.start
        parts, last = [], 0
        for hit in (h for h in hits if h.end <= cut):
            detection = _reported(hit, self._offset)
            if hit.action == "block":
                self._block(detection)
            self._detections.append(detection)
            if hit.action == "mask":
                parts += [text[last : hit.start], f"[REDACTED:{hit.type}]"]
                last = hit.end
        parts.append(text[last:cut])
        self._pending = text[cut:]
        self._size = len(self._pending)
        self._offset += cut
        # Held back far more than the window (an open key block, a hit that runs on): each
        # release scans all it holds, so wait until that has doubled. Linear in the answer
        # however it is chunked, where a release per chunk would be quadratic.
        self._stalled = 2 * self._size if self._size > self._window + 2 * _MAX_TOKEN else 0
        return "".join(parts)


def _reported(hit: Hit, offset: int) -> Detection:
    return Detection(
        type=hit.type,
        start=hit.start + offset,
        end=hit.end + offset,
        action=hit.action,
        source=hit.source,
        rule=hit.rule,
        level=hit.level,
    )


def _is_token(s: str, i: int) -> bool:
    char = s[i]
    if char in _TOKEN:
        return True
    # a space inside a number (138 1234 5678) is part of it
    return char == " " and 0 < i < len(s) - 1 and s[i - 1].isdigit() and s[i + 1].isdigit()


def _safe_cut(norm: Normalised, cut: int) -> int:
    """``cut`` moved left so it splits no token and no open private key block."""
    if cut <= 0:
        return 0
    s = norm.text
    j = norm.index(cut)
    begin = s.rfind("-----begin", 0, j)
    if begin >= 0 and "-----end" not in s[begin:]:
        j = begin
    if 0 < j < len(s) and _is_token(s, j - 1) and _is_token(s, j):
        start = j - 1
        while start > 0 and j - start < _MAX_TOKEN and _is_token(s, start - 1):
            start -= 1
        if j - start < _MAX_TOKEN:
            j = start
    if j >= len(s):
        return len(norm.original)
    return norm.span(j, j + 1)[0]


class OutputStream:
    """Guard, then restore: the output relay feeds upstream text, emits what comes back.

    Either half may be left out: the response cache keeps an answer guarded but not
    restored (no caller's value is ever stored) and restores it for each caller.
    """

    def __init__(self, guard: OutputGuard | None, restorer: StreamRestorer | None) -> None:
        self.guard = guard
        self._restorer = restorer

    def feed(self, chunk: str) -> str:
        """Text to emit now; raises ``ContentBlockedError`` when the answer must stop."""
        guarded = self.guard.feed(chunk) if self.guard is not None else chunk
        return self._restorer.feed(guarded) if self._restorer is not None else guarded

    def finish(self) -> str:
        """The held-back rest, checked and restored, at the end of the answer."""
        rest = self.guard.finish() if self.guard is not None else ""
        if self._restorer is None:
            return rest
        return self._restorer.feed(rest) + self._restorer.finish()

    @property
    def detections(self) -> list[Detection]:
        return self.guard.detections if self.guard is not None else []
