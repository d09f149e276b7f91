"""What the filters find and decide: detections, verdicts, and the two errors they raise.

A :class:`Detection` never carries the value it found: results go into log lines
and out of ``/v1/filter``, and neither may repeat the secret they describe.
Offsets are always in the *original* text (``text[start:end]``), whatever the
normalisation did.

The errors are defined in :mod:`functions.errors`' tree and re-exported here:

    InvalidRequestError                400
    └── ContentBlockedError            400 invalid_request_error  content_filter
    NoDeploymentError                  503
    └── NoCompliantDeploymentError     503 server_error           no_compliant_deployment
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from functions.errors import ContentBlockedError as ContentBlockedError
from functions.errors import NoCompliantDeploymentError as NoCompliantDeploymentError
from functions.filtering.classify import Level, highest
from functions.filtering.policy import EntityAction

Verdict = Literal["allow", "mask", "block"]
Source = Literal["pii", "lexicon", "injection", "leak"]


@dataclass(frozen=True, slots=True)
class Hit:
    """A detection while it is being decided (internal; carries the canonical value)."""

    type: str
    start: int
    end: int
    action: EntityAction
    source: Source
    rule: str
    level: Level
    canonical: str = ""  # what makes two surface forms the same value, for the vault


class Detection(BaseModel):
    """One finding, as reported: where, what kind, and what was done about it."""

    model_config = ConfigDict(frozen=True)

    type: str
    start: int
    end: int
    action: EntityAction
    source: Source
    rule: str
    level: Level
    placeholder: str | None = None  # the placeholder that replaced it, on input
    message: int | None = None  # index of the message, in a conversation


class FilterResult(BaseModel):
    """The outcome of one scan: ``/v1/filter`` returns ``model_dump()`` of this."""

    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    masked_text: str
    level: Level
    detections: list[Detection]  # every block, then the first MAX_REPORTED others
    injection_score: float = 0.0
    reasons: list[str] = []
    omitted: int = 0  # findings acted on but not listed (a 1 MB paste holds 50,000)

    @property
    def blocked(self) -> bool:
        return self.verdict == "block"

    def log_fields(self) -> dict[str, str]:
        """Verdict, level and every detection's type and action: safe for a log line."""
        found = ",".join(f"{d.type}:{d.action}" for d in self.detections)
        return {
            "filter": self.verdict,
            "level": self.level.value,
            "detections": found,
            "injection": f"{self.injection_score:.2f}",
        }

    def raise_if_blocked(self) -> None:
        if self.blocked:
            raise ContentBlockedError.of(self.detections)


MAX_REPORTED = 1_000


class _Finding(Protocol):
    @property
    def action(self) -> EntityAction: ...

    @property
    def level(self) -> Level: ...


def verdict_of(findings: Iterable[_Finding]) -> Verdict:
    actions = {f.action for f in findings}
    if "block" in actions:
        return "block"
    return "mask" if "mask" in actions else "allow"


def level_of(findings: Iterable[_Finding], default: Level) -> Level:
    return highest((f.level for f in findings), floor=default)


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    found = set(verdicts)
    return "block" if "block" in found else "mask" if "mask" in found else "allow"


_SEVERITY = {"block": 0, "mask": 1, "flag": 2, "allow": 3}


def resolve(hits: list[Hit], priority: dict[str, int] | None = None) -> list[Hit]:
    """Overlapping hits reduced to disjoint ones, in text order.

    The most severe action wins (a ``block`` is never hidden inside a ``flag``), then
    the longer span, then the type that comes first in ``priority``, then the earlier
    one. Greedy in that order: a hit is kept unless it overlaps one kept before it.
    O(n log n + covered length): the kept spans are marked in a bytearray, so each
    overlap test is one C-speed search of the hit's own span.
    """
    if len(hits) < 2:
        return hits
    ranks = priority or {}
    ordered = sorted(
        hits,
        key=lambda h: (_SEVERITY[h.action], h.start - h.end, ranks.get(h.type, 99), h.start),
    )
    size = max(max(h.end for h in hits), max(h.start for h in hits)) + 1
    covered = bytearray(size)  # 1 where a kept span covers the character
    starts = bytearray(size)  # 1 where a kept span starts
    points = bytearray(size)  # 1 where an empty kept span sits
    kept: list[Hit] = []
    for hit in ordered:
        start, end = hit.start, hit.end
        if start < end:
            if covered.find(1, start, end) >= 0 or points.find(1, start + 1, end) >= 0:
                continue
            covered[start:end] = b"\x01" * (end - start)
            starts[start] = 1
        else:  # an empty span overlaps only a kept span that runs across it
            if 0 < start < size and covered[start - 1] and covered[start] and not starts[start]:
                continue
            points[start] = 1
        kept.append(hit)
    return sorted(kept, key=lambda h: h.start)
