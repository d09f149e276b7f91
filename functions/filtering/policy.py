"""The filtering policy: what to do with each kind of detection, per tenant.

:class:`FilterPolicy` is a pydantic model meant to sit in the gateway's Settings
(e.g. ``ENCLAVE_GATEWAY_FILTERING='{"entities": {"EMAIL": "allow"}}'``). Entity
tables given in configuration are merged *over* the defaults, so naming one entity
does not silently allow the others. A tenant's :class:`TenantOverride` is merged
over the organisation's policy by :meth:`FilterPolicy.for_tenant`; its lexicons
are loaded after the organisation's, so a tenant's entry for a term wins.

Actions:
    ``mask``  replace the value: a reversible placeholder on input
              (``<PHONE_1>``), an irreversible ``[REDACTED:PHONE]`` on output;
    ``block`` refuse the request (input) or end the stream (output);
    ``flag``  leave the text alone, record the detection (it still sets the level);
    ``allow`` as ``flag``: recorded for the log line, never acted on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from functions.filtering.classify import Level

EntityAction = Literal["mask", "block", "flag", "allow"]
# content the gateway cannot read (image, audio, file parts): "classify" raises the
# request to ``unreadable_level`` (so it stays on premises by default), "block" refuses it
UnreadableAction = Literal["classify", "block", "allow"]
Direction = Literal["input", "output"]

ENTITY_TYPES = (
    "SECRET",
    "EMAIL",
    "ID_CARD",
    "BANK_CARD",
    "CREDIT_CARD",
    "SSN",
    "PHONE",
    "LANDLINE",
    "PASSPORT",
    "IPV6",
    "IPV4",
    "PERSON",
    "ADDRESS",
)

DEFAULT_INPUT_ACTIONS: dict[str, EntityAction] = dict.fromkeys(ENTITY_TYPES, "mask")
# A model that writes out a key or a national ID it never saw is leaking training
# or retrieval data: the answer is stopped, not just redacted.
#
# Names and addresses are masked on input (PIPL/GDPR personal data: "a patient's name
# beside a diagnosis") and allowed on output: an answer that names a public figure or
# a city's town hall must not be redacted, and the caller's own names come back from
# their placeholders anyway. "allow" on output also means they are not looked for in
# answers at all (a name's context may follow it, so a streamed answer would otherwise
# hold back a window of text; see functions.filtering.tail.PROSE_WINDOW).
DEFAULT_OUTPUT_ACTIONS: dict[str, EntityAction] = {
    **DEFAULT_INPUT_ACTIONS,
    "SECRET": "block",
    "PERSON": "allow",
    "ADDRESS": "allow",
}
DEFAULT_LEVELS: dict[str, Level] = {
    "SECRET": Level.SECRET,
    "ID_CARD": Level.CONFIDENTIAL,
    "BANK_CARD": Level.CONFIDENTIAL,
    "CREDIT_CARD": Level.CONFIDENTIAL,
    "SSN": Level.CONFIDENTIAL,
    "PASSPORT": Level.CONFIDENTIAL,
    "PHONE": Level.INTERNAL,
    "LANDLINE": Level.INTERNAL,
    "EMAIL": Level.INTERNAL,
    "IPV4": Level.INTERNAL,
    "IPV6": Level.INTERNAL,
    # personal, not sensitive data in PIPL's sense by themselves: the diagnosis beside
    # a name is what raises a request's level (the lexicons)
    "PERSON": Level.INTERNAL,
    "ADDRESS": Level.INTERNAL,
}
BUILTIN_LEXICONS = ("builtin:zh", "builtin:en")


def _known(table: dict[str, object]) -> None:
    unknown = set(table) - set(ENTITY_TYPES)
    if unknown:
        raise ValueError(f"unknown entity types {sorted(unknown)}; known: {list(ENTITY_TYPES)}")


class TenantOverride(BaseModel):
    """What one tenant changes; ``None`` keeps the organisation's value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entities: dict[str, EntityAction] = Field(default_factory=dict)
    output_entities: dict[str, EntityAction] = Field(default_factory=dict)
    levels: dict[str, Level] = Field(default_factory=dict)
    extra_lexicons: tuple[str, ...] = ()
    injection_threshold: float | None = Field(default=None, ge=0, le=1)
    default_level: Level | None = None
    unreadable_content: UnreadableAction | None = None

    @field_validator("entities", "output_entities", "levels")
    @classmethod
    def _entity_keys(cls, table: dict[str, object]) -> dict[str, object]:
        _known(table)
        return table


class FilterPolicy(BaseModel):
    """The organisation's filtering policy, with per-tenant overrides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    entities: dict[str, EntityAction] = Field(default_factory=lambda: dict(DEFAULT_INPUT_ACTIONS))
    output_entities: dict[str, EntityAction] = Field(
        default_factory=lambda: dict(DEFAULT_OUTPUT_ACTIONS)
    )
    levels: dict[str, Level] = Field(default_factory=lambda: dict(DEFAULT_LEVELS))
    # "builtin:zh" / "builtin:en" name the shipped samples; anything else is a file path
    lexicons: tuple[str, ...] = BUILTIN_LEXICONS
    injection_threshold: float = Field(default=0.5, ge=0, le=1)
    injection_action: Literal["block", "flag"] = "block"
    # the learned injection detector beside the rules: stage 1 (hashed n-grams,
    # functions/filtering/classifier.py) on every message, stage 2 (an e5 head,
    # semantic.py) on those stage 1 is unsure of. On by default since stage 2 settles
    # stage 1's false positives on plain questions (test_injection_ordinary.py); off:
    # the rules alone. Held-out figures in test_injection_quality.py
    injection_model: bool = True
    default_level: Level = Level.INTERNAL
    unreadable_content: UnreadableAction = "classify"
    unreadable_level: Level = Level.CONFIDENTIAL
    # requests at or above this level are never sent to an external deployment
    on_prem_only_at: Level = Level.CONFIDENTIAL
    # streamed answers hold back only a tail that could still become a finding (see
    # functions.filtering.output); this bounds how far an operator's ``re:`` rule may run
    # from its literal prefix, and is the whole window for a rule without one
    hold_back_chars: int = Field(default=32, ge=8, le=4096, description="output window")
    leak_ngram_chars: int = Field(default=24, ge=8, description="verbatim run that is a leak")
    tenants: dict[str, TenantOverride] = Field(default_factory=dict)

    @field_validator("entities")
    @classmethod
    def _merge_input(cls, table: dict[str, EntityAction]) -> dict[str, EntityAction]:
        _known(dict(table))
        return {**DEFAULT_INPUT_ACTIONS, **table}

    @field_validator("output_entities")
    @classmethod
    def _merge_output(cls, table: dict[str, EntityAction]) -> dict[str, EntityAction]:
        _known(dict(table))
        return {**DEFAULT_OUTPUT_ACTIONS, **table}

    @field_validator("levels")
    @classmethod
    def _merge_levels(cls, table: dict[str, Level]) -> dict[str, Level]:
        _known(dict(table))
        return {**DEFAULT_LEVELS, **table}

    def actions(self, direction: Direction) -> dict[str, EntityAction]:
        return self.entities if direction == "input" else self.output_entities

    def for_tenant(self, tenant: str) -> FilterPolicy:
        """This policy with ``tenant``'s override merged in (itself if there is none)."""
        override = self.tenants.get(tenant)
        if override is None:
            return self
        threshold = override.injection_threshold
        return self.model_copy(
            update={
                "entities": {**self.entities, **override.entities},
                "output_entities": {**self.output_entities, **override.output_entities},
                "levels": {**self.levels, **override.levels},
                "lexicons": (*self.lexicons, *override.extra_lexicons),
                "injection_threshold": self.injection_threshold if threshold is None else threshold,
                "default_level": override.default_level or self.default_level,
                "unreadable_content": override.unreadable_content or self.unreadable_content,
                "tenants": {},
            }
        )
