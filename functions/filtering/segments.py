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

Stage 1's reading of a long text lives here too (:func:`read_long`): the segments scored
in one numpy pass, each with the rules of :mod:`.injection_rules` that match it alone,
beside the whole text's reading; :mod:`.injection` calls it for a text over :data:`LONG`
characters, and ``infra/training/injection/documents.py`` tunes its constants.
"""

from __future__ import annotations

import math
import re

import numpy as np

from functions.filtering.classifier import InjectionModel, prepare, rule_features
from functions.filtering.injection_rules import rule_weights
from functions.filtering.normalise import normalise

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


# A text longer than LONG characters (a pasted or retrieved document) is read
# segment by segment (:func:`segments`): runs of whole sentences of about SEGMENT_BYTES
# of UTF-8, each scored with the rules that match it, and the highest logit kept, less
# DOCUMENT_OFFSET (the highest of many segments is biased upwards: more chances at a false
# alarm). It is read whole too (windows of 512 characters, as before, but without the
# rules' features), less WHOLE_OFFSET, and the higher reading stands: a long jailbreak is
# suspicious all through, not in one sentence (read by segments alone, 3% of the
# calibration split's long attacks were missed; with the whole reading, as many as
# before). All were chosen on the calibration split only: documents glued from its
# items, and its long texts (``infra/training/injection/documents.py``, output in
# ``documents_tables.txt``). Rerun for the stage 1 of the third batch of look-alikes
# (d6d42b0): on the 720 calibration documents (120 attacked, 240 benign per language), both
# stages, 128 bytes at the same offsets read en 0.725 / 0.096 -> 0.725 / 0.058 and zh
# 0.783 / 0.104 -> 0.775 / 0.092 (twelve false positives fewer, one Chinese attack lost),
# but a short Chinese instruction in a long Chinese report (test_segments.py) fell under
# the threshold at stage 1 (0.63 -> 0.48: a 128-byte segment is ~43 Chinese characters,
# twice the instruction), and its first held-out run read documents en 0.833 / 0.050 ->
# 0.833 / 0.067, zh 0.800 / 0.033 -> 0.733 / 0.033 (the test split one English attack
# more): no clear gain, 96 kept. 160 bytes and the other offsets (0.5, 1.5; whole 1.5,
# 2.5) traded attacks for false positives there too.
SEGMENT_BYTES = 96
DOCUMENT_OFFSET = 1.0
WHOLE_OFFSET = 2.0
# characters from which a text is read by segments too: about three English sentences or
# ten Chinese ones. Over one window (512) only, a third of the Chinese tuning documents
# (reviews glued together, under 512 characters, a 20-character attack inside) were still
# read as one diluted window; from 300, no verdict on the calibration split's natural texts
# changed (from 256, one English attack was lost); an ordinary 200-character message is
# read as before, at the same cost
LONG = 300


def is_long(folded: str) -> bool:
    """Whether stage 1 reads ``folded`` (normalised text) by segments too: it is longer
    than :data:`LONG` characters."""
    return len(folded) > LONG and len(prepare(folded)) > LONG


def read_segments(
    text: str,
    model: InjectionModel,
    budget: int = SEGMENT_BYTES,
    offset: float = DOCUMENT_OFFSET,
    ruled: bool = True,
) -> tuple[float, str]:
    """The highest stage-1 logit over the segments of ``text`` (each with the rules that
    match it alone: the words of unrelated sentences do not add up), less ``offset``,
    and that segment (what stage 2 reads). ``ruled``: whether any rule matched the whole
    text (if none did, the segments are not searched for one: a third of the cost)."""
    parts, prepared, ruling = [], [], []
    for part in segments(text, segment_size(text, budget)):
        folded = normalise(part).text
        window = prepare(folded)
        if window:
            parts.append(part)
            prepared.append(window)
            reasons = tuple(rule_weights(folded)) if ruled else ()
            weights = model.weights[rule_features(reasons)] if reasons else None
            ruling.append(0.0 if weights is None else float(weights.sum(dtype=np.float32)))
    if not parts:
        return -math.inf, text
    logits = model.window_logits(prepared) + np.array(ruling)
    best = int(np.argmax(logits))
    return float(logits[best]) - offset, parts[best]


def read_long(
    text: str, folded: str, model: InjectionModel, ruled: bool
) -> tuple[float, str | None]:
    """Stage 1's logit of a long ``text`` (``folded``: its normalised form): the higher of
    its segments' reading (:func:`read_segments`) and its whole reading without the rules
    (they matched in sentences that may be unrelated), less :data:`WHOLE_OFFSET`; and the
    segment that scored highest (None: the whole reading stood)."""
    # the module's constants read at call time (documents.py tries other values)
    logit, focus = read_segments(text, model, SEGMENT_BYTES, DOCUMENT_OFFSET, ruled)
    whole = model.logit(folded) - WHOLE_OFFSET
    if whole > logit:  # suspicious all through: stage 2 reads its top window, as before
        return whole, None
    return logit, focus
