"""Checks on a streamed answer: lexicon hits, personal data, system-prompt leakage.

:class:`OutputGuard` sits between the model's stream and the client. It holds back
only what could still become, or change, a finding: the *live tail* of the text so
far. Everything before it is released with the chunk that completed it, so ordinary
prose (words followed by a space or punctuation, CJK text without digits) flows at
the speed of the model. The live tail is the earliest of:

* a suffix that is a prefix of a lexicon term (the Aho-Corasick state), or a whole
  term ending in a letter or digit (the next character decides its word boundary);
* the text from an operator ``re:`` rule's literal prefix (``mrn``) seen in the last
  ``hold_back_chars`` characters, or the last ``hold_back_chars`` characters when a
  rule has no literal prefix (the fixed window of old);
* a trailing token a personal-data or secret pattern could still grow into (a number
  with its separators, ``+86``, an email, a key, an address), a number of 7 or more
  digits whose context words may still follow (16 characters), an unterminated
  ``-----BEGIN … PRIVATE KEY-----`` block, a ``password: …``/``bearer …`` assignment
  whose value is still coming (:mod:`functions.filtering.tail`);
* the last ``PROSE_WINDOW`` (96) characters, only when the output policy acts on names
  or addresses (by default it allows them and they are not looked for): their context
  may follow them and their parts chain;
* the longest run at the end that is verbatim in the system prompt (below).

and the release never ends inside a finding, even one that overlap resolution drops.
Detectors see the last 32 normalised characters already released as context
(lookbehinds, context words) but report nothing that starts there. So the released
text, the redactions and the detections equal those of guarding the whole answer at
once, however it is chunked (``tests/functions/filtering/test_output_stream_property.py``),
for matches up to 256 characters (a longer token is split, as before) and ``re:``
rule matches up to ``hold_back_chars`` from their literal prefix.

What it finds, it acts on per the output policy: ``mask`` becomes an irreversible
``[REDACTED:PHONE]`` (never a ``<PHONE_n>`` placeholder: those would be restored
from the conversation's vault, to the wrong value), ``block`` raises
:class:`~functions.filtering.results.ContentBlockedError`, which the relay turns
into a final error event.

:class:`LeakDetector` blocks an answer that repeats a run of ``leak_ngram_chars``
characters of the system prompt verbatim (compared without whitespace and
punctuation, after normalisation). It checks each chunk as it arrives, so the stream
stops at the chunk that completes the first such run, as before; to keep that run
from reaching the client, the guard holds the longest tail (under ``leak_ngram_chars``
compared characters) that occurs in the prompt. Guaranteed: no run of
``leak_ngram_chars`` characters of the prompt is ever released, nor any character of
the run that stops the stream. An answer that leaks is stopped, not redacted, so a
streamed one may have released text before the run, where the whole answer is
refused outright.

:class:`OutputStream` composes the two steps in the one safe order: guard the
model's text (with placeholders still in it), then restore the placeholders.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable

from functions.filtering.classify import Level
from functions.filtering.masking import StreamRestorer
from functions.filtering.normalise import Normalised, normalise
from functions.filtering.pii import PRIORITY
from functions.filtering.results import ContentBlockedError, Detection, Hit, resolve
from functions.filtering.tail import MAX_TOKEN

_SQUASH = re.compile(r"[\W_]+")
_COMPARED = re.compile(r"[^\W_]+")
# normalised characters of released text the detectors still see: the 24 before a number
# that its context words may sit in, and a lookbehind or two
CONTEXT = 32

# every finding in normalised text, unresolved, that starts at or after the index given
Find = Callable[[Normalised, int], list[Hit]]
# where the live tail of normalised text starts, looking no further back than the index,
# and the (normalised) spans that a cut must not fall inside, besides the findings
Live = Callable[[str, int], tuple[int, list[tuple[int, int]]]]


class LeakDetector:
    """Finds verbatim runs of the system prompt in a stream, chunk by chunk."""

    def __init__(self, system_prompt: str, ngram: int) -> None:
        squashed = _SQUASH.sub("", normalise(system_prompt).text)
        self.n = min(ngram, len(squashed)) if len(squashed) >= 12 else 0
        n = self.n
        self._prompt = squashed
        self._grams = {squashed[i : i + n] for i in range(len(squashed) - n + 1)} if n else set()
        self._tail = ""
        # the answer's offset of each of the last n - 1 compared characters
        self._offsets: deque[int] = deque(maxlen=max(n - 1, 1))
        self._fed = 0  # characters of the answer fed so far

    def feed(self, chunk: str) -> bool:
        """Whether the stream, up to and including ``chunk``, repeats the prompt."""
        if not self.n:
            return False
        norm = normalise(chunk)
        text = self._tail + _SQUASH.sub("", norm.text)
        n, grams = self.n, self._grams
        leaked = any(text[i : i + n] in grams for i in range(len(text) - n + 1))
        self._tail = text[max(0, len(text) - n + 1) :]
        self._track(norm)
        return leaked

    def _track(self, norm: Normalised) -> None:
        base, last = self._fed, self._offsets.maxlen or 1
        self._fed += len(norm.original)
        runs: deque[tuple[int, int]] = deque(maxlen=last)  # the last runs, enough for the tail
        for m in _COMPARED.finditer(norm.text):
            runs.append(m.span())
        offsets: list[int] = []
        for start, end in reversed(runs):
            for i in range(end - 1, max(start, end - last + len(offsets)) - 1, -1):
                offsets.append(base + norm.span(i, i + 1)[0])
            if len(offsets) >= last:
                break
        self._offsets.extend(reversed(offsets))

    def live_from(self) -> int | None:
        """The answer's offset where the longest tail that occurs in the prompt starts."""
        tail = self._tail[len(self._tail) - len(self._offsets) :]
        low, high = 0, len(tail)  # the run of the last ``low`` characters is in the prompt
        while low < high:  # a shorter tail of one in the prompt is in it too: bisect
            mid = (low + high + 1) // 2
            if tail[len(tail) - mid :] in self._prompt:
                low = mid
            else:
                high = mid - 1
        return self._offsets[len(self._offsets) - low] if low else None


class OutputGuard:
    """Checks a streamed answer; ``feed`` returns the text safe to emit now."""

    def __init__(self, find: Find, live: Live, *, leak: LeakDetector | None = None) -> None:
        self._find = find
        self._live = live
        self._leak = leak
        self._context = ""  # the last CONTEXT normalised characters released
        self._pending = ""  # what the last release held back
        self._incoming: list[str] = []  # chunks fed since (joined once, at the next release)
        self._size = 0  # len(_pending) + len of every incoming chunk
        self._stalled = 0  # no release until _size exceeds this (see _release)
        self._offset = 0  # original offset of _pending[0] in the whole answer
        self._detections: list[Detection] = []

    @property
    def detections(self) -> list[Detection]:
        """What was found so far; offsets are in the model's answer as generated."""
        return list(self._detections)

    @property
    def held(self) -> int:
        """Characters fed but not yet released."""
        return self._size

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
        if not chunk or self._size <= self._stalled:
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
        base = len(self._context)
        norm = _behind(self._context, normalise(text))
        hits = self._find(norm, base)
        cut = len(norm.original) if final else self._cut(norm, base, hits)
        parts, last = [], base
        for hit in resolve(hits, PRIORITY):
            if hit.end > cut:
                continue
            detection = _reported(hit, self._offset - base)
            if hit.action == "block":
                self._block(detection)
            self._detections.append(detection)
            if hit.action == "mask":
                parts += [norm.original[last : hit.start], f"[REDACTED:{hit.type}]"]
                last = hit.end
        parts.append(norm.original[last:cut])
        self._context = norm.text[: norm.index(cut)][-CONTEXT:]
        self._pending = text[cut - base :]
        self._size = len(self._pending)
        self._offset += cut - base
        # Held back a long tail (an open key block, a long token, an assignment): each
        # release scans all it holds, so wait until that has doubled. Linear in the answer
        # however it is chunked, where a release per chunk would be quadratic.
        self._stalled = 2 * self._size if self._size > 2 * MAX_TOKEN else 0
        return "".join(parts)

    def _cut(self, norm: Normalised, base: int, hits: list[Hit]) -> int:
        """The original index (in ``norm``) up to which the text is settled: the start of
        the live tail, moved left out of any finding or keyed match it falls inside."""
        live, keyed = self._live(norm.text, base)
        cut = norm.span(live, live + 1)[0] if live < len(norm.text) else len(norm.original)
        held = self._leak.live_from() if self._leak is not None else None
        if held is not None:
            cut = min(cut, max(base, held - self._offset + base))
        spans = [(h.start, h.end) for h in hits] + [norm.span(*span) for span in keyed]
        return _clear_of(spans, cut)


def _behind(context: str, norm: Normalised) -> Normalised:
    """``norm`` with the released ``context`` (already normalised) in front of it."""
    if not context:
        return norm
    origin = None
    if norm.origin is not None:
        origin = [*range(len(context)), *(len(context) + i for i in norm.origin)]
    return Normalised(context + norm.text, context + norm.original, origin)


def _clear_of(spans: list[tuple[int, int]], cut: int) -> int:
    """``cut`` moved left until none of ``spans`` (findings, kept or not) runs across it."""
    start, end = -1, -1
    for s, e in sorted(
        span for span in spans if span[0] < cut
    ):  # merge findings that overlap into runs; cut at the start of its run
        if s >= end:
            start, end = s, e
        else:
            end = max(end, e)
        if start < cut < end:
            return start
    return cut


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
