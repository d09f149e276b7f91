"""Decided hits applied to a text: masked or redacted, and reported as detections.

Why a module of its own: the engine decides *what* was found (:func:`~.results.resolve`
over lexicon and PII hits, the injection score, the leak check); this is how a decision
changes the text and what is said about it. On input a masked value becomes a
placeholder of the conversation's vault (:mod:`.masking`), restored in the answer unless
it came from the operator or a retrieved passage; on output it becomes
``[REDACTED:TYPE]``. Each returns the :class:`~.results.Detection` list reported for the
text: at most :data:`~.results.MAX_REPORTED` (a text with thousands of findings does not
make an answer as long), and every block (it says why a request was refused).
A detection never carries the value it found.
"""

from __future__ import annotations

from functions.filtering.classify import Level
from functions.filtering.masking import Vault
from functions.filtering.results import MAX_REPORTED, Detection, Hit


def mask_hits(
    text: str, hits: list[Hit], vault: Vault, restorable: bool, message: int | None
) -> tuple[str, list[Detection]]:
    """``text`` with each masked hit replaced by a placeholder of ``vault`` (``restorable``:
    whether an answer may get its value back), and the detections to report: at most
    :data:`~.results.MAX_REPORTED`, blocks always (``message``: the index they came from)."""
    parts: list[str] = []
    detections: list[Detection] = []
    last = 0
    for hit in hits:
        placeholder = None
        if hit.action == "mask":
            value = text[hit.start : hit.end]
            placeholder = vault.placeholder(hit.type, hit.canonical, value, restorable=restorable)
            parts += [text[last : hit.start], placeholder]
            last = hit.end
        if len(detections) < MAX_REPORTED or hit.action == "block":
            detections.append(_detection(hit, placeholder, message))
    parts.append(text[last:])
    return "".join(parts), detections


def redact_hits(text: str, hits: list[Hit]) -> tuple[str, list[Detection]]:
    """``text`` with each masked hit replaced by ``[REDACTED:TYPE]`` (an answer: nothing to
    restore), and the detections to report, capped as in :func:`mask_hits`."""
    parts, last = [], 0
    for hit in hits:
        if hit.action == "mask":
            parts += [text[last : hit.start], f"[REDACTED:{hit.type}]"]
            last = hit.end
    parts.append(text[last:])
    listed = [h for i, h in enumerate(hits) if i < MAX_REPORTED or h.action == "block"]
    return "".join(parts), [_detection(hit, None) for hit in listed]


def _detection(hit: Hit, placeholder: str | None, message: int | None = None) -> Detection:
    # built from our own typed Hit: nothing to validate, and 30k findings must stay cheap
    return Detection.model_construct(
        type=hit.type,
        start=hit.start,
        end=hit.end,
        action=hit.action,
        source=hit.source,
        rule=hit.rule,
        level=hit.level,
        placeholder=placeholder,
        message=message,
    )


def whole_detection(
    text: str,
    type_: str,
    action: str,
    source: str,
    rule: str,
    level: Level,
    message: int | None = None,
) -> Detection:
    """A detection over the whole of ``text`` (an injection, a system-prompt leak)."""
    return Detection.model_validate(
        {
            "type": type_,
            "start": 0,
            "end": len(text),
            "action": action,
            "source": source,
            "rule": rule,
            "level": level,
            "message": message,
        }
    )
