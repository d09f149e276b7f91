"""Cut a long text into short, sentence-aligned segments, each scored on its own.

Why: a pasted or retrieved document is not one message. Scored whole (or in windows of
512 characters), one injected instruction of 20 Chinese characters inside 2,000
characters of reviews is a few percent of the n-grams it is averaged with, and scores
as benign (held out, 0.33 of such Chinese documents were caught); and a long benign
text collects the suspicious-ish words of unrelated sentences into one score (0.22 of
English ones were refused). A segment is a run of whole sentences of at most ``size``
characters (a sentence longer than that is cut into half-overlapping pieces), the next
segment starting half-way through the previous one, so that an instruction of a sentence
or two lands whole in some segment, scored about as it would be alone.

Linear in the length of the text: one pass finds the sentence ends, and each sentence
is read by at most a few segments (the next segment starts past the previous one's first
sentence and at or past its middle).
"""

from __future__ import annotations

import re

# sentence ends, ASCII and full-width (raw text: segments are cut before normalisation,
# so that stage 2 can embed the segment as the caller wrote it)
_END = re.compile(r"[.!?;\n。！？；．｡]+")


def _sentences(text: str, size: int) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, a sentence over ``size`` characters cut
    into pieces of ``size`` that overlap by half."""
    spans: list[tuple[int, int]] = []
    start = 0
    bounds = [m.end() for m in _END.finditer(text)]
    if not bounds or bounds[-1] < len(text):
        bounds.append(len(text))
    step = max(1, size // 2)
    for end in bounds:
        if end - start <= size:
            spans.append((start, end))
        else:
            spans += [(i, min(end, i + size)) for i in range(start, end - step, step)]
        start = end
    return spans


def segments(text: str, size: int) -> list[str]:
    """``text`` as runs of whole sentences of at most ``size`` characters (see above); the
    text itself when it fits."""
    if len(text) <= size:
        return [text]
    spans = _sentences(text, size)
    out: list[str] = []
    i = 0
    while i < len(spans):
        first = spans[i][0]
        j = i + 1  # one sentence at least (never longer than size: cut above)
        while j < len(spans) and spans[j][1] - first <= size:
            j += 1
        last = spans[j - 1][1]
        out.append(text[first:last])
        if j == len(spans):
            break
        middle = first + (last - first) // 2
        k = i + 1
        while k < j and spans[k][0] < middle:
            k += 1
        i = k
    return out


def segment_size(text: str, budget: int) -> int:
    """Characters per segment: ``budget`` UTF-8 bytes on average over ``text`` (a Chinese
    character is 3 bytes and says about as much as a short English word)."""
    per_char = len(text.encode("utf-8", "surrogatepass")) / max(len(text), 1)
    return max(16, int(budget / per_char))
