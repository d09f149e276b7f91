"""A/B experiments: one public model name split over variants, sticky per caller.

``ENCLAVE_GATEWAY_EXPERIMENTS='{"chat": {"variants": [{"name": "a", "model": "m1",
"weight": 90}, {"name": "b", "model": "m2", "weight": 10}]}}'`` makes ``chat`` a model
callers may ask for. Each request for it is given one variant, and from then on it is
that variant's model that every later step sees: rights, routing, compliance,
fallbacks, the response cache (its key holds the model) and accounting treat it as
any other request for ``m1`` or ``m2``. The assignment is a resolution step before
routing (:func:`make_assign`), not a second router.

Sticky: the variant is a function of the experiment's name and the caller
(:func:`subject_of`), through SHA-256, so every gateway process, today and after a
restart, puts the same caller in the same bucket. Which variant a request got is in
its ``x-enclave-variant`` header, its decisions (``experiment``, ``variant``: the log
line and the audit record), and ``enclave_gateway_experiment_requests``.

Rights follow the alias rule: a key needs the variant's model. A key that may use
only some of the variants' models is refused (403) when it lands in another's
bucket, and ``/v1/models`` lists an experiment only to keys that may use them all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, model_validator

from functions import lifecycle

if TYPE_CHECKING:  # Settings holds experiments, and the contexts hold Settings' types
    from functions.context import ChatContext, ChatStep, Principal

VARIANT_HEADER = "x-enclave-variant"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # a header value and a metrics label


class Variant(BaseModel):
    name: str = Field(pattern=_NAME)
    model: str = Field(min_length=1, description="a model of the routing config")
    weight: int = Field(gt=0, le=1_000_000, description="share of the traffic, relative")


class Experiment(BaseModel):
    variants: list[Variant] = Field(min_length=1, max_length=16)

    @model_validator(mode="after")
    def _unique_names(self) -> Experiment:
        names = [v.name for v in self.variants]
        if len(names) != len(set(names)):
            raise ValueError(f"variant names must be unique, got {names}")
        return self

    @property
    def total_weight(self) -> int:
        return sum(v.weight for v in self.variants)

    def variant_for(self, experiment: str, subject: str) -> Variant:
        """The subject's variant: a stable hash of (experiment, subject) picks a bucket in
        [0, total weight), and the variants own consecutive ranges of buckets."""
        bucket = bucket_of(experiment, subject, self.total_weight)
        for variant in self.variants:
            if bucket < variant.weight:
                return variant
            bucket -= variant.weight
        raise AssertionError("a bucket below the total weight falls in a variant")


def bucket_of(experiment: str, subject: str, total: int) -> int:
    """SHA-256 of the pair, as a number, modulo ``total`` (not ``hash()``: that one is
    salted per process, so stickiness would not survive a restart or a second gateway).
    64 bits of digest make the modulo's bias below 1e-12 for any sane total."""
    digest = hashlib.sha256(f"{experiment}\x00{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % total


def check_experiments(
    experiments: Mapping[str, Experiment], models: Collection[str], aliases: Collection[str]
) -> None:
    """Refuse at start-up what could not be served: a variant on a model no deployment
    serves, or an experiment named like a model or an alias (one name, one meaning)."""
    for name, experiment in experiments.items():
        if name in models or name in aliases:
            raise ValueError(f"experiment {name!r} has the name of a model or alias")
        unknown = sorted({v.model for v in experiment.variants} - set(models))
        if unknown:
            raise ValueError(f"experiment {name!r} names models no deployment serves: {unknown}")


def subject_of(ctx: ChatContext) -> str:
    """Who stays in one bucket: the end user a frontend key names, else the request's
    ``user``, else the key.

    A frontend key (``--trust-user-headers``) shares one key among many people, so the
    person it names (functions/endusers.py) is the subject: each of them keeps a variant.
    ``user`` is chosen by the caller, so a caller can pick its own variant; that only moves
    its own traffic and never widens its rights (the variant's model is checked like any).
    """
    if ctx.principal.end_user is not None:
        return f"end-user:{ctx.principal.key_id}:{ctx.principal.end_user.id}"
    return f"user:{ctx.body.user}" if ctx.body.user else f"key:{ctx.principal.key_id}"


def usable(
    experiment: Experiment, principal: Principal, may_use: Callable[[Principal, str], bool]
) -> bool:
    """Whether ``principal`` may use every variant's model (``/v1/models`` lists it then)."""
    return all(may_use(principal, v.model) for v in experiment.variants)


def make_assign(experiments: Mapping[str, Experiment]) -> ChatStep:
    """The step that turns an experiment's name into its variant's model."""

    # functions.classes imports Settings, which holds experiments: imported here, not above
    from functions.classes import classify

    async def assign(ctx: ChatContext) -> ChatContext:
        experiment = experiments.get(ctx.body.model)
        if experiment is None:
            return ctx
        name = ctx.body.model
        variant = experiment.variant_for(name, subject_of(ctx))
        found = classify(ctx.headers, ctx.body)
        if found.task is not None or found.priority == "background":
            # a frontend's bookkeeping (a title, tags) is no answer to compare: served by
            # the variant's model, but not counted, reported or labelled as the experiment's
            return ctx.evolve(body=ctx.body.model_copy(update={"model": variant.model}))
        owner = lifecycle.call()
        owner.experiment, owner.variant = name, variant.name
        return ctx.evolve(
            body=ctx.body.model_copy(update={"model": variant.model}),
            decisions={**ctx.decisions, "experiment": name, "variant": variant.name},
        )

    return assign


def variant_headers(ctx: ChatContext) -> dict[str, str]:
    """``x-enclave-variant`` for an answer to an experiment (none for any other model)."""
    variant = ctx.decisions.get("variant")
    return {VARIANT_HEADER: variant} if variant else {}
