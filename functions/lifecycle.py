"""One owner of a request's lifecycle: one clock, one outcome, recorded exactly once.

The edge (:class:`functions.edge.Edge`) opens a :class:`Call` when a request
arrives and closes it when the last byte of the answer is about to leave, or
when the client went away first. In between, whoever serves the request fills it
in: who called, which model and deployment answered, what each step decided
(a step that refuses records its verdict on the way out), the usage, the first
token. From that one outcome :class:`Lifecycle` derives everything an operator
reads — the ``enclave_gateway_requests_total`` count by status, the latency and
time-to-first-token histograms, the one log line, and, for a chat, the one
audit record — so a request refused with 401 is counted, logged and audited
exactly like one answered with 200.

The outcome's status is the HTTP status unless the answer says otherwise: a
stream that started with 200 and ended with an in-band error event reports that
error's status; a client that left before the last byte is a 499.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from loguru import logger
from prometheus_client import Counter

from functions.errors import EnclaveError, map_exception
from functions.metrics import Metrics

if TYPE_CHECKING:
    from functions.audit.local import RequestAudit
    from functions.context import ChatContext, RequestContext

CLIENT_CLOSED = 499
SHUT_DOWN = 503  # the gateway stopped (past its drain) before the answer was complete
DRAIN_TIMEOUT_S = 10.0  # how long a stopping gateway waits for its last records
Kind = Literal["chat", "other"]


@dataclass(slots=True)
class Call:
    """What one request came to; filled in as it is served, closed once by the edge."""

    started: float = field(default_factory=time.perf_counter)
    kind: Kind = "other"
    route: str = ""  # the route's template (bounded), set by the edge once it is known
    ctx: RequestContext | ChatContext | None = None  # a chat's context, as far as it got
    model: str = ""
    deployment: str = ""
    experiment: str = ""  # an A/B experiment's name and the variant it gave (config-bounded)
    variant: str = ""
    usage: dict[str, Any] | None = None
    answer: str | None = None  # the answer as sent, for capture
    status: int | None = None  # the outcome, when it is not the HTTP status
    first_token_s: float | None = None
    refused: dict[str, str] = field(default_factory=dict)  # verdicts of a refusing step
    error: str | None = None
    closed: bool = False

    def first_token(self) -> None:
        if self.first_token_s is None:
            self.first_token_s = time.perf_counter() - self.started

    def refuse(self, step: str, exc: BaseException) -> None:
        """``step`` refused the request (a step may have said more: :meth:`verdict`)."""
        error = map_exception(exc) if isinstance(exc, Exception) else None
        code = (error.code or error.type) if error is not None else "client_closed"
        self.refused.setdefault(step, f"refused:{code}")

    def verdict(self, **verdicts: str) -> None:
        """What a step decided although it then refuses (kept even as the error propagates)."""
        self.refused.update(verdicts)

    @property
    def decisions(self) -> dict[str, str]:
        made = dict(self.ctx.decisions) if self.ctx is not None else {}
        return {**made, **self.refused}


# the call being served in this task (set by the edge; None outside a request or on the node)
current: ContextVar[Call | None] = ContextVar("current_call", default=None)


def call() -> Call:
    """This request's call; a detached one where no lifecycle runs (unit tests, the node)."""
    found = current.get()
    return found if found is not None else Call()


Step = Callable[[Any], Awaitable[Any]]


async def run_steps(steps: Sequence[tuple[str, Step]], ctx: Any, owner: Call) -> Any:
    """Run named steps in order, keeping ``owner.ctx`` current; a step that raises
    records its refusal before the error goes on to the edge."""
    for name, step in steps:
        try:
            ctx = await step(ctx)
        except BaseException as exc:
            owner.refuse(name, exc)
            raise
        owner.ctx = ctx
    return ctx


class Lifecycle:
    """Turns a closed :class:`Call` into the metrics, the log line and the audit record."""

    def __init__(
        self,
        metrics: Metrics,
        audit: RequestAudit | None = None,
        answered: Callable[[Call], Awaitable[None]] | None = None,
    ) -> None:
        self.metrics = metrics
        self.audit = audit
        self.answered = answered  # told of each answered chat before its last byte leaves
        # requests opened and not yet recorded: the lifespan waits for them (drain)
        self._unrecorded = 0
        self._all_recorded = asyncio.Event()
        self._all_recorded.set()
        self.experiment_requests = Counter(
            "enclave_gateway_experiment_requests",
            "Chat requests of A/B experiments, by variant and outcome",
            ["experiment", "variant", "status"],
            registry=metrics.registry,
        )
        self.filter_verdicts = Counter(
            "enclave_gateway_filter_verdicts",
            "Chat requests by the input filter's verdict (allow, mask, block, off)",
            ["verdict"],
            registry=metrics.registry,
        )
        for verdict in ("allow", "mask", "block", "off"):
            self.filter_verdicts.labels(verdict)

    def open(self) -> Call:
        self._unrecorded += 1
        self._all_recorded.clear()
        return Call()

    async def drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        """Wait until every request opened has its outcome recorded (bounded by
        ``timeout_s``). The lifespan calls this before the audit log closes: a request
        the server's shutdown cancelled is closed by the edge a moment later, and its
        record must still find the log open."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_recorded.wait(), timeout_s)

    async def close(
        self, owner: Call, http_status: int, method: str, path: str, error: str | None = None
    ) -> None:
        """Record ``owner``'s outcome, once; later calls do nothing.

        A chat's audit record is durable (written, fsynced, under a signed head)
        before this returns, that is before the last byte of its answer leaves. When
        that fails and the audit log fails closed, the outcome is that 503, counted
        and logged as such, and the error is raised for the edge to answer with.
        """
        if owner.closed:
            return
        owner.closed = True
        try:
            await self._record(owner, http_status, method, path, error)
        finally:
            self._unrecorded -= 1
            if not self._unrecorded:
                self._all_recorded.set()

    async def _record(
        self, owner: Call, http_status: int, method: str, path: str, error: str | None
    ) -> None:
        elapsed = time.perf_counter() - owner.started
        status = owner.status if owner.status is not None else http_status
        ctx = owner.ctx
        decisions = owner.decisions
        refusal: EnclaveError | None = None
        try:
            waits: list[Awaitable[None]] = []
            if owner.kind == "chat" and self.audit is not None and ctx is not None:
                waits.append(
                    self.audit.request_durable(
                        _with_decisions(ctx, decisions),
                        status=status,
                        latency_s=elapsed,
                        deployment=owner.deployment or None,
                        usage=owner.usage,
                        answer=owner.answer,
                    )
                )
            if owner.kind == "chat" and status == 200 and self.answered is not None:
                waits.append(self.answered(owner))  # rateable once the answer is in
            # side by side (two commits, two threads); shielded: a client that hangs up now
            # must not cost the record. The audit's failure is the one that refuses.
            if waits:
                await asyncio.shield(asyncio.gather(*waits))
        except EnclaveError as exc:  # fail closed: nobody is answered without a record
            refusal, status, error = exc, exc.status_code, exc.message
        finally:  # counted and logged even when the task is cancelled meanwhile
            self._count_and_log(owner, status, http_status, method, path, error, elapsed)
        if refusal is not None:
            raise refusal

    def _count_and_log(
        self,
        owner: Call,
        status: int,
        http_status: int,
        method: str,
        path: str,
        error: str | None,
        elapsed: float,
    ) -> None:
        route = owner.route or "unmatched"
        metrics = self.metrics
        metrics.requests.labels(route, owner.model, owner.deployment, str(status)).inc()
        metrics.latency.labels(route, owner.model).observe(elapsed)
        if owner.experiment:
            self.experiment_requests.labels(owner.experiment, owner.variant, str(status)).inc()
        if owner.first_token_s is not None:
            metrics.ttft.labels(owner.model, owner.deployment).observe(owner.first_token_s)
        ctx = owner.ctx
        principal = ctx.principal if ctx is not None else None
        decisions = owner.decisions
        verdict = decisions.get("filter")
        if owner.kind == "chat" and verdict in ("allow", "mask", "block", "off"):
            self.filter_verdicts.labels(verdict).inc()
        fields: dict[str, Any] = {
            "method": method,
            "path": path,
            "route": route,
            "status": http_status,  # the HTTP status: ECS http.response.status_code
            "outcome": status,  # what the request came to (an in-band error, a 499)
            "model": owner.model,
            "deployment": owner.deployment,
            "experiment": owner.experiment,
            "variant": owner.variant,
            "key_id": principal.key_id if principal is not None else None,
            "tenant": principal.tenant if principal is not None else None,
            # a frontend's end user, as a pseudonym: the audit record says who it is
            "end_user": principal.end_user.pseudonym
            if principal is not None and principal.end_user is not None
            else None,
            "priority": _priority(decisions),
            "decisions": decisions,
            "ms": round(elapsed * 1000, 2),
            "error": owner.error or error,
        }
        message = "chat" if owner.kind == "chat" else "request"
        logger.info(message, **{k: v for k, v in fields.items() if v or v == 0})


def _priority(decisions: Mapping[str, str]) -> str | None:
    """A chat's class, from the classifying step's verdict (None if it refused or never ran)."""
    found = decisions.get("priority", "").partition(" ")[0]
    return found if found in ("interactive", "background") else None


def _with_decisions(ctx: Any, decisions: Mapping[str, str]) -> Any:
    return ctx.evolve(decisions=decisions) if decisions != ctx.decisions else ctx
