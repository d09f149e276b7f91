"""The typed, frozen request contexts that the gateway's steps pass along, by stage.

A step is ``async (ctx) -> ctx``: it reads what earlier steps produced, returns a
new context with what it adds, or raises an :class:`~functions.errors.EnclaveError`.
:class:`RequestContext` is a request as it arrives (authentication fills in the
principal); a chat, once parsed, is a :class:`ChatContext`, whose principal and
body are never missing, so the steps after parsing need no ``None`` checks. The
chat steps are listed once, at start-up (``functions.gateway.chat_steps``), and
run by :func:`functions.lifecycle.run_steps`, which notes each refusal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers

from functions.filtering.classify import Level
from functions.filtering.engine import MaskedConversation
from functions.ratelimit.limiter import Admission
from functions.ratelimit.settings import Limits
from functions.settings import Deployment
from functions.wire import ChatCompletionRequest, CitationStyle

if TYPE_CHECKING:
    from functions.cache.cache import Lookup
    from functions.endusers import EndUser
    from functions.window.fit import Window


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key's id (never the key) or a token's subject, and its policy."""

    key_id: str
    tenant: str = "default"
    role: str = "member"
    models: frozenset[str] | None = None  # None: any model the role may use
    collections: frozenset[str] | None = None  # None: any collection of the tenant
    rpm: int | None = None
    tpm: int | None = None
    daily_tokens: int | None = None
    # a frontend key (``--trust-user-headers``) may name its end users; their own limits
    trust_user_headers: bool = False
    user_limits: Limits | None = None  # None: the settings' per-user defaults
    end_user: EndUser | None = None  # who of a frontend's users asked (functions/endusers.py)


@dataclass(frozen=True, slots=True)
class RequestContext:
    """A request as it arrives: before the caller is known and the body is read."""

    request_id: str
    headers: Headers
    client: str | None = None  # the socket peer's address; functions/logins.py reads it
    payload: Any = None  # the request's JSON, as sent
    size: int = 0  # the body's length in bytes
    principal: Principal | None = None  # set by authentication
    # what each step decided, for the log line and the audit record
    decisions: Mapping[str, str] = field(default_factory=dict)
    body: None = None  # not parsed yet (a chat's parsed body is on ChatContext)

    def evolve(self, **changes: object) -> RequestContext:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def decided(self, step: str, verdict: str, **changes: object) -> RequestContext:
        return self.evolve(decisions={**self.decisions, step: verdict}, **changes)


@dataclass(frozen=True, slots=True)
class ChatContext:
    """A chat request once authenticated and parsed: caller and body are always there."""

    request_id: str
    headers: Headers
    principal: Principal
    body: ChatCompletionRequest
    client: str | None = None
    payload: Any = None  # the request's JSON, as sent
    size: int = 0
    # deployments to try, in order: the model's (healthy first), then its fallbacks
    plan: tuple[Deployment, ...] = ()
    # the request as the model may see it, and what it takes to restore the answer
    conversation: MaskedConversation | None = None
    level: Level | None = None  # data classification, set by the filter step
    admission: Admission | None = None  # rate-limit headers and the token settlement
    citations: tuple[dict[str, Any], ...] = ()  # sources retrieved into the prompt
    citing: CitationStyle = "field"  # how the answer shows them (set by retrieval)
    alias: str | None = None  # the model alias the caller named, whose settings apply
    window: Window | None = None  # what fitting the context window did (functions/window)
    retrieved: frozenset[int] = frozenset()  # indices of messages holding retrieved passages
    cache: Lookup | None = None  # the response cache's hit (with the answer), miss or bypass
    priority: str = "interactive"  # or "background" (functions/classes.py)
    decisions: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parsed(
        cls, ctx: RequestContext, principal: Principal, body: ChatCompletionRequest
    ) -> ChatContext:
        return cls(
            request_id=ctx.request_id,
            headers=ctx.headers,
            principal=principal,
            body=body,
            client=ctx.client,
            payload=ctx.payload,
            size=ctx.size,
            decisions=ctx.decisions,
        )

    def evolve(self, **changes: object) -> ChatContext:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def decided(self, step: str, verdict: str, **changes: object) -> ChatContext:
        return self.evolve(decisions={**self.decisions, step: verdict}, **changes)


# authentication and the other routes' steps; a chat's steps after parsing
Step = Callable[[RequestContext], Awaitable[RequestContext]]
ChatStep = Callable[[ChatContext], Awaitable[ChatContext]]
