"""Content safety and data masking for the gateway.

Sensitive words, personal data and secrets are found on evasion-normalised text
(:mod:`.normalise`), masked with reversible per-conversation placeholders before a
request leaves the gateway (:mod:`.masking`), restored exactly in the answer, even
streamed; injections are scored (:mod:`.injection`), answers are guarded as they
stream (:mod:`.output`), and each request is classified (:mod:`.classify`) so that
classified data never reaches an external deployment (:mod:`.routing`).

Public surface (everything else is internal)::

    policy   = FilterPolicy(...)                     # pydantic; lives in Settings
    filters  = FilterSet(policy)                     # at start-up: lexicons loaded once
    cf       = filters.for_tenant(principal.tenant)  # -> ContentFilter

    cf.scan(text, "input" | "output") -> FilterResult          # /v1/filter
    cf.mask_request(body, retrieved)  -> MaskedConversation    # every text field masked:
                                                               # .request .vault .result
    AnswerFilter(cf, conversation)    .apply(answer) .chunk(chunk)   # every text of an answer
    Scanner(filters).mask(size, …)    # the same, in a worker process for large inputs
    raise_level(result.level, headers.get(CLASSIFICATION_HEADER)) -> Level
    compliant_plan(plan, level, policy, location_of) -> tuple  # or 503
    route_allowed(level, location, policy) -> bool

Blocks raise :class:`ContentBlockedError` (400, ``content_filter``); an empty
compliant plan raises :class:`NoCompliantDeploymentError` (503).
"""

from functions.filtering.classify import CLASSIFICATION_HEADER, Level, parse_level, raise_level
from functions.filtering.engine import ContentFilter, FilterSet, MaskedConversation
from functions.filtering.injection import InjectionScore, score_injection
from functions.filtering.lexicon import Lexicon, parse_lexicon
from functions.filtering.masking import StreamRestorer, Vault
from functions.filtering.normalise import Normalised, normalise
from functions.filtering.output import OutputGuard, OutputStream
from functions.filtering.policy import FilterPolicy, TenantOverride
from functions.filtering.results import (
    ContentBlockedError,
    Detection,
    FilterResult,
    NoCompliantDeploymentError,
)
from functions.filtering.routing import compliant_plan, route_allowed

__all__ = [
    "CLASSIFICATION_HEADER",
    "ContentBlockedError",
    "ContentFilter",
    "Detection",
    "FilterPolicy",
    "FilterResult",
    "FilterSet",
    "InjectionScore",
    "Level",
    "Lexicon",
    "MaskedConversation",
    "NoCompliantDeploymentError",
    "Normalised",
    "OutputGuard",
    "OutputStream",
    "StreamRestorer",
    "TenantOverride",
    "Vault",
    "compliant_plan",
    "normalise",
    "parse_level",
    "parse_lexicon",
    "raise_level",
    "route_allowed",
    "score_injection",
]
