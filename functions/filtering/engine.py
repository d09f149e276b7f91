"""The facade: one :class:`ContentFilter` per tenant policy, built once at start-up.

* :meth:`ContentFilter.scan` checks one text (``/v1/filter``);
* :meth:`ContentFilter.mask_conversation` masks a chat request's messages before
  they leave the gateway and returns the vault that restores the answer;
* :meth:`ContentFilter.output_stream` guards and restores a streamed answer.

Every check runs on normalised text; every offset reported is in the original.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from functions.filtering.classify import Level
from functions.filtering.injection import score_injection
from functions.filtering.lexicon import Lexicon
from functions.filtering.masking import StreamRestorer, Vault
from functions.filtering.normalise import Normalised, normalise
from functions.filtering.output import LeakDetector, OutputGuard, OutputStream
from functions.filtering.pii import PRIORITY, find_pii
from functions.filtering.policy import Direction, FilterPolicy
from functions.filtering.results import (
    Detection,
    FilterResult,
    Hit,
    level_of,
    resolve,
    verdict_of,
)
from functions.wire import ChatMessage, ContentPart

_INJECTION_ROLES = frozenset({"user", "tool", "function"})
_SYSTEM_ROLES = frozenset({"system", "developer"})


@dataclass(frozen=True, slots=True)
class MaskedConversation:
    """A request's messages as the model may see them, and what it takes to restore."""

    messages: list[ChatMessage]
    vault: Vault
    result: FilterResult  # verdict, level and detections over all messages; text unused

    @property
    def system_prompt(self) -> str:
        """The masked system and developer messages: what a leak would repeat."""
        return "\n".join(m.text() for m in self.messages if m.role in _SYSTEM_ROLES)


class ContentFilter:
    """Lexicons, PII detectors and the injection scorer under one tenant's policy."""

    def __init__(self, policy: FilterPolicy | None = None, lexicon: Lexicon | None = None) -> None:
        self.policy = policy or FilterPolicy()
        self.lexicon = lexicon if lexicon is not None else Lexicon.load(self.policy.lexicons)

    def detect(self, norm: Normalised, direction: Direction) -> list[Hit]:
        """Disjoint lexicon and PII hits in ``norm``, with this policy's actions and levels."""
        actions, levels = self.policy.actions(direction), self.policy.levels
        hits = self.lexicon.find(norm)
        hits += [
            Hit(f.type, f.start, f.end, actions[f.type], "pii", f.rule, levels[f.type], f.canonical)
            for f in find_pii(norm)
        ]
        return resolve(hits, PRIORITY)

    def scan(
        self,
        text: str,
        direction: Direction = "input",
        *,
        vault: Vault | None = None,
        system_prompt: str | None = None,
        score_injection_too: bool = True,
    ) -> FilterResult:
        """Check ``text``: masked with placeholders from ``vault`` on input, redacted on output.

        On output, ``system_prompt`` (as the model saw it) enables the leak check.
        """
        norm = normalise(text)
        hits = self.detect(norm, direction)
        if direction == "input":
            masked, detections = _mask(
                text, hits, Vault.for_texts([text]) if vault is None else vault
            )
        else:
            masked, detections = _redact(text, hits)
        score, reasons = 0.0, tuple[str, ...]()
        if direction == "input" and score_injection_too:
            injection = score_injection(text, norm.text)
            score, reasons = injection.score, injection.reasons
            if score >= self.policy.injection_threshold:
                detections.append(
                    _whole(
                        text,
                        "PROMPT_INJECTION",
                        self.policy.injection_action,
                        "injection",
                        ",".join(reasons),
                        Level.PUBLIC,
                    )
                )
        if direction == "output" and system_prompt:
            leak = LeakDetector(system_prompt, self.policy.leak_ngram_chars)
            if leak.feed(text):
                detections.append(
                    _whole(text, "SYSTEM_PROMPT_LEAK", "block", "leak", "ngram", Level.SECRET)
                )
        return FilterResult(
            verdict=verdict_of(detections),
            masked_text=masked,
            level=level_of(detections, self.policy.default_level),
            detections=detections,
            injection_score=score,
            reasons=list(reasons),
        )

    def mask_conversation(self, messages: Sequence[ChatMessage]) -> MaskedConversation:
        """Mask every message, in order, with one vault (see :mod:`~functions.filtering.masking`).

        Injection is scored on user and tool messages, not on the operator's system prompt.
        """
        vault = Vault.for_texts(m.text() for m in messages)
        masked: list[ChatMessage] = []
        detections: list[Detection] = []
        score, reasons = 0.0, set[str]()
        for index, message in enumerate(messages):
            injection = message.role in _INJECTION_ROLES
            content, results = self._mask_content(message.content, vault, injection)
            masked.append(message.model_copy(update={"content": content}))
            for result in results:
                detections += [d.model_copy(update={"message": index}) for d in result.detections]
                score = max(score, result.injection_score)
                reasons.update(result.reasons)
        result = FilterResult(
            verdict=verdict_of(detections),
            masked_text="",
            level=level_of(detections, self.policy.default_level),
            detections=detections,
            injection_score=score,
            reasons=sorted(reasons),
        )
        return MaskedConversation(masked, vault, result)

    def _mask_content(
        self, content: str | list[ContentPart] | None, vault: Vault, injection: bool
    ) -> tuple[str | list[ContentPart] | None, list[FilterResult]]:
        if isinstance(content, str):
            result = self.scan(content, vault=vault, score_injection_too=injection)
            return result.masked_text, [result]
        if content is None:
            return None, []
        parts, results = [], []
        for part in content:
            if part.type == "text" and part.text:
                result = self.scan(part.text, vault=vault, score_injection_too=injection)
                part = part.model_copy(update={"text": result.masked_text})
                results.append(result)
            parts.append(part)
        return parts, results

    def output_guard(self, system_prompt: str | None = None) -> OutputGuard:
        """A guard for one streamed answer (``system_prompt``: as the model saw it)."""
        leak = LeakDetector(system_prompt, self.policy.leak_ngram_chars) if system_prompt else None
        return OutputGuard(
            lambda norm: self.detect(norm, "output"),
            window=max(self.policy.hold_back_chars, self.lexicon.max_term_chars),
            leak=leak,
        )

    def output_stream(self, conversation: MaskedConversation) -> OutputStream:
        """Guard, then restore, one streamed answer to ``conversation``."""
        guard = self.output_guard(conversation.system_prompt or None)
        return OutputStream(guard, StreamRestorer(conversation.vault))


def _mask(text: str, hits: list[Hit], vault: Vault) -> tuple[str, list[Detection]]:
    parts, last, detections = [], 0, []
    for hit in hits:
        placeholder = None
        if hit.action == "mask":
            placeholder = vault.placeholder(hit.type, hit.canonical, text[hit.start : hit.end])
            parts += [text[last : hit.start], placeholder]
            last = hit.end
        detections.append(_detection(hit, placeholder))
    parts.append(text[last:])
    return "".join(parts), detections


def _redact(text: str, hits: list[Hit]) -> tuple[str, list[Detection]]:
    parts, last = [], 0
    for hit in hits:
        if hit.action == "mask":
            parts += [text[last : hit.start], f"[REDACTED:{hit.type}]"]
            last = hit.end
    parts.append(text[last:])
    return "".join(parts), [_detection(hit, None) for hit in hits]


def _detection(hit: Hit, placeholder: str | None) -> Detection:
    return Detection(
        type=hit.type,
        start=hit.start,
        end=hit.end,
        action=hit.action,
        source=hit.source,
        rule=hit.rule,
        level=hit.level,
        placeholder=placeholder,
    )


def _whole(text: str, type_: str, action: str, source: str, rule: str, level: Level) -> Detection:
    return Detection.model_validate(
        {
            "type": type_,
            "start": 0,
            "end": len(text),
            "action": action,
            "source": source,
            "rule": rule,
            "level": level,
        }
    )


class FilterSet:
    """One :class:`ContentFilter` per tenant, all built (and every lexicon read) up front."""

    def __init__(self, policy: FilterPolicy) -> None:
        self.policy = policy
        self._default = ContentFilter(policy)
        self._tenants = {name: ContentFilter(policy.for_tenant(name)) for name in policy.tenants}

    def for_tenant(self, tenant: str) -> ContentFilter:
        return self._tenants.get(tenant, self._default)
