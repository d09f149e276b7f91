"""Prompt-injection and jailbreak detection for Chinese and English: the stage-1 scorer.

The rules of :mod:`.injection_rules` (instruction override, role-play personas,
system-prompt extraction, chat-template tokens, "decode this and follow it") catch the
common, reusable attack phrasings cheaply (a few regex passes); their score is the
noisy-OR of the matched weights. This module adds what the table cannot say alone: a
base64 or hex blob (or rot13 text, when it is named) whose *decoded* text scores as an
injection weighs as the ``encoded`` rule. :func:`score_injection` adds the learned model
of :mod:`.classifier` (hashed n-grams, with each matched rule as a feature) and returns
its calibrated probability (stage 1): the rule score alone is :func:`score_rules`. A
text over 300 characters (a pasted or retrieved document) is read by sentence-aligned
segments of ~96 bytes (:mod:`.segments`, :func:`~.segments.read_long`): one instruction
inside a long benign text is scored about as it would be alone, and the suspicious words
of unrelated sentences do not add up (a strong rule matched anywhere still floors the
score). A text whose stage-1 score falls in the grey band of :mod:`.semantic`
:func:`escalates` to stage 2, an e5 head (a long text's top segment), and
:func:`combine_semantic` gives the final score (the engine wires it:
``ContentFilter.injection``). Rules of :data:`STRONG_RULES` weight decide alone and
floor the score. Held-out TPR and FPR per language and family are in
``tests/functions/filtering/test_injection_quality.py``.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from dataclasses import dataclass

from functions.filtering.classifier import InjectionModel
from functions.filtering.injection_rules import noisy_or, rule_weights
from functions.filtering.normalise import normalise
from functions.filtering.segments import is_long, read_long
from functions.filtering.semantic import SHORT, SemanticHead

_BASE64 = re.compile(r"[A-Za-z0-9+/]{20,}={0,2}|[A-Za-z0-9_\-]{24,}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2}){12,}|(?:\\x[0-9a-fA-F]{2}){8,}")
_ROT13_HINT = re.compile(r"rot-?13|caesar|凯撒")


@dataclass(frozen=True, slots=True)
class InjectionScore:
    score: float
    reasons: tuple[str, ...]


def _decoded(blob: str) -> str | None:
    """``blob`` decoded as base64 or hex, if that gives mostly printable text."""
    try:
        if blob.startswith("\\x"):
            raw = bytes.fromhex(blob.replace("\\x", ""))
        elif re.fullmatch(r"[0-9a-fA-F]+", blob):
            raw = bytes.fromhex(blob)
        else:
            raw = base64.b64decode(
                blob.replace("-", "+").replace("_", "/") + "=" * (-len(blob) % 4)
            )
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    printable = sum(c.isprintable() or c.isspace() for c in text)
    return text if text and printable / len(text) > 0.9 else None


def _hidden_texts(original: str, folded: str) -> list[str]:
    """The normalised texts hidden in base64 or hex blobs, or in rot13 when it is named."""
    found = []
    for pattern in (_BASE64, _HEX):
        for match in pattern.finditer(original):
            decoded = _decoded(match.group())
            if decoded is not None:
                found.append(normalise(decoded).text)
    if _ROT13_HINT.search(folded):
        found.append(codecs.encode(folded, "rot13"))
    return found


def _encoded_weight(hidden: list[str]) -> float:
    """The rule score of the strongest hidden payload (0 if none)."""
    return max((noisy_or(rule_weights(text)) for text in hidden), default=0.0)


def score_rules(text: str, folded: str | None = None) -> InjectionScore:
    """The rules' noisy-OR score of ``text`` (``folded``: its normalised form, if made)."""
    folded = normalise(text).text if folded is None else folded
    return _score_rules(folded, _hidden_texts(text, folded))


def _score_rules(folded: str, hidden: list[str]) -> InjectionScore:
    weights = rule_weights(folded)
    encoded = _encoded_weight(hidden)
    if encoded >= 0.4:
        weights["encoded"] = max(0.9, encoded)
    return InjectionScore(noisy_or(weights), tuple(sorted(weights)))


def signals(
    text: str, folded: str | None = None, model: InjectionModel | None = None
) -> tuple[InjectionScore, float]:
    """The rules' score and the learned model's logit for ``text``, before calibration.

    The model reads the text (in half-overlapping windows of
    :data:`~.classifier.WINDOW` characters, as it was trained) and every payload decoded
    from it (base64, hex, rot13), keeping the highest logit.
    """
    rules, logit, _ = _signals(text, folded, model, segmented=False)
    return rules, logit


def _signals(
    text: str, folded: str | None, model: InjectionModel | None, segmented: bool
) -> tuple[InjectionScore, float, str | None]:
    """:func:`signals`, a long text read by segments if ``segmented``; and the segment
    that scored highest (None: the text was read whole)."""
    folded = normalise(text).text if folded is None else folded
    hidden = _hidden_texts(text, folded)
    model = InjectionModel.load() if model is None else model
    rules = _score_rules(folded, hidden)
    focus = None
    if segmented and is_long(folded):
        logit, focus = read_long(text, folded, model, ruled=bool(rules.reasons))
    else:
        logit = model.logit(folded, rules.reasons)
    for payload in hidden:  # read with its own rules too: the text only says "encoded"
        reasons = tuple(sorted({*rules.reasons, *rule_weights(payload)}))
        logit = max(logit, model.logit(payload, reasons))
    return rules, logit, focus


# Rules that score this much on their own (an explicit "ignore previous instructions",
# a system-prompt extraction, a payload that decodes to one) are a floor under the
# calibrated score. Training on hand-written look-alikes ("the previous instructions in
# the manual are outdated") taught the model to discount the rule indicators, and it
# then scored the canonical attacks, plain or encoded, under the threshold; the floor
# costs nothing on the held-out look-alikes (measured: same TPR/FPR at 0.8 and 0.85).
STRONG_RULES = 0.85


@dataclass(frozen=True, slots=True)
class StageOne:
    """Stage 1's view of a text: the rules, the n-gram logit and their calibrated score."""

    rules: InjectionScore
    logit: float
    score: InjectionScore
    # the segment of a long text that scored highest (what stage 2 reads); None: the text
    # was read whole, or its whole reading scored higher
    focus: str | None = None


def stage_one(
    text: str,
    folded: str | None = None,
    model: InjectionModel | None = None,
    segmented: bool = True,
) -> StageOne:
    """The rules and the n-gram model of :mod:`.classifier`, calibrated (see
    :func:`score_injection`); a long text read by segments (:func:`~.segments.read_long`) unless
    ``segmented`` is false (how stage 2's head was fitted)."""
    model = InjectionModel.load() if model is None else model
    rules, logit, focus = _signals(text, folded, model, segmented)
    reasons = (*rules.reasons, "classifier") if logit > 0 else rules.reasons
    probability = model.probability(rules.score, logit)
    if rules.score >= STRONG_RULES:  # the model may raise a strong rule's score, never lower it
        probability = max(probability, rules.score)
    return StageOne(rules, logit, InjectionScore(round(probability, 4), reasons), focus)


def score_injection(
    text: str, folded: str | None = None, model: InjectionModel | None = None
) -> InjectionScore:
    """The injection score of ``text``: the rules and the learned model, calibrated.

    ``reasons`` are the rules that matched, plus ``classifier`` when the learned
    model alone leans towards an injection (its logit is positive).
    """
    return stage_one(text, folded, model).score


def combine_semantic(first: StageOne, head_logit: float, head: SemanticHead) -> InjectionScore:
    """Stage 1 and the e5 head (:mod:`.semantic`) of an escalated text, calibrated; strong
    rules stay a floor. ``semantic`` joins the reasons when the head leans towards an
    injection; ``classifier`` stays only if stage 1 leaned so."""
    probability = head.probability(first.logit, head_logit)
    if first.rules.score >= STRONG_RULES:
        probability = max(probability, first.rules.score)
    reasons = first.score.reasons + (("semantic",) if head_logit > 0 else ())
    return InjectionScore(round(probability, 4), reasons)


def escalates(first: StageOne, head: SemanticHead, text: str) -> bool:
    """Whether stage 2 reads ``text``: stage 1 is unsure of it (its score in the head's
    band), no strong rule matched (it decides alone: the floor would hold whatever stage
    2 said), and it is not short (:data:`~.semantic.SHORT` bytes: "hi", "你好", "thanks"
    are many of a chat's messages, and too short for an e5 reading to add much)."""
    return (
        first.rules.score < STRONG_RULES
        and len(text.strip().encode("utf-8", "surrogatepass")) >= SHORT
        and head.escalates(first.score.score)
    )
