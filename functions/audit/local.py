"""Audit settings as a gateway process uses them, and the hook the request path calls.

Locally nothing needs configuring: unless keys are set, a key set is generated
once under ``<data_dir>/audit-keys`` (private parts mode 0600) and records go to
``<data_dir>/audit``. Production deployments set ``ENCLAVE_AUDIT_*`` instead
(keys from a secret; the heads directory on storage the gateway cannot rewrite).
A gateway whose storage is a bucket writes nothing to its disk: it generates no
keys and refuses to start without them (:func:`resolve_audit`).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol

from functions.audit.errors import AuditConfigError, AuditUnavailableError
from functions.audit.records import build_admin_record, build_request_record
from functions.audit.settings import AuditSettings, generate_keys, new_kek
from functions.audit.writer import AuditLog
from functions.context import Principal
from functions.errors import map_exception
from functions.logs import trace_id
from functions.storage.settings import StorageSettings

BUCKET_KEYS = (
    "the audit log is in a bucket (ENCLAVE_STORAGE_URI=s3://…) and a gateway on a bucket "
    "writes nothing to its disk, so no local audit key set is generated: set "
    "ENCLAVE_AUDIT_HMAC_KEY and ENCLAVE_AUDIT_SIGNING_KEY (or ENCLAVE_AUDIT_PUBLIC_KEY to "
    "verify only) from a secret; `enclave audit keygen DIR` makes a set"
)


def resolve_audit(
    audit: AuditSettings, data_dir: Path, storage: StorageSettings | None = None
) -> AuditSettings:
    """``audit`` with the data directory's defaults and, if none are set, local keys.

    With a bucket (``storage.remote``) keys must be configured: :class:`AuditConfigError`
    otherwise. ``directory`` keeps its default (nothing is written there).
    """
    fields: dict[str, Any] = {k: getattr(audit, k) for k in audit.model_fields_set}
    fields.setdefault("directory", data_dir / "audit")
    configured = audit.hmac_key or audit.signing_key or audit.signing_key_path
    if audit.enabled and not configured:
        if storage is not None and storage.remote:
            raise AuditConfigError(BUCKET_KEYS)
        local = _local_keys(data_dir / "audit-keys")
        if "kek" in fields:  # the operator's KEKs (shared by every gateway) stay
            local.pop("kek", None)
            local.pop("active_kek", None)
        for name, value in local.items():
            fields.setdefault(name, value)
    return AuditSettings.model_validate(
        {
            k: v.get_secret_value() if hasattr(v, "get_secret_value") else v
            for k, v in fields.items()
        }
    )


def _local_keys(directory: Path) -> dict[str, Any]:
    saved = directory / "settings.json"
    if saved.exists():
        loaded: dict[str, Any] = json.loads(saved.read_text())
        return loaded
    fields = generate_keys(directory)
    fields["kek"] = {
        k: v.get_secret_value() if hasattr(v, "get_secret_value") else v
        for k, v in fields["kek"].items()
    }
    fd = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(fields, out)
    return fields


class _Named(Protocol):
    @property
    def model(self) -> str: ...


class AuditedRequest(Protocol):
    """What a chat request's record is built from: a request's context at any stage."""

    @property
    def request_id(self) -> str: ...
    @property
    def principal(self) -> Principal | None: ...
    @property
    def body(self) -> _Named | None: ...
    @property
    def payload(self) -> Any: ...
    @property
    def decisions(self) -> Mapping[str, str]: ...


class RequestAudit:
    """What the gateway records: one record per request and per admin action.

    Each record has two ways out. ``request``/``endpoint``/``admin`` queue it and
    return at once. ``request_durable``/``endpoint_durable``/``admin_durable`` take
    the same arguments and return once it is written, fsynced and under the signed
    head (:meth:`AuditLog.durable`, group-committed with concurrent requests):
    await one right before the last byte of an answer is sent. If it could not be
    made durable they raise :class:`AuditUnavailableError` (503) with
    ``audit.fail_closed`` (refuse: the answer must not leave), and otherwise return
    as if it had been (the loss is already counted and logged: carry on).
    """

    def __init__(self, log: AuditLog | None) -> None:
        self.log = log

    @property
    def capturing(self) -> bool:
        """Whether answers are to be kept (encrypted) in the records."""
        return self.log is not None and self.log.settings.capture_content

    def request(
        self,
        ctx: AuditedRequest,
        *,
        status: int | str,
        latency_s: float,
        deployment: str | None = None,
        usage: dict[str, Any] | None = None,
        answer: str | None = None,
    ) -> None:
        """The record of one chat request, answered or refused."""
        if self.log is not None:
            record = self._request_record(ctx, status, latency_s, deployment, usage, answer)
            self.log.record(record, anonymous=ctx.principal is None)

    async def request_durable(
        self,
        ctx: AuditedRequest,
        *,
        status: int | str,
        latency_s: float,
        deployment: str | None = None,
        usage: dict[str, Any] | None = None,
        answer: str | None = None,
    ) -> None:
        """:meth:`request`, returning once the record is durable (see the class doc)."""
        if self.log is not None:
            record = self._request_record(ctx, status, latency_s, deployment, usage, answer)
            await self._durable(record, anonymous=ctx.principal is None)

    def endpoint(
        self,
        principal: Principal | None,
        route: str,
        *,
        status: int | str,
        latency_s: float,
        model: str | None = None,
        tokens_in: int | None = None,
        error: str | None = None,
        decisions: Mapping[str, str] | None = None,
    ) -> None:
        """The record of one request to a route other than chat (retrieve, embeddings, filter…).

        ``principal`` is None when the request was refused before a key was known:
        such records never take an authenticated record's place in the queue.
        ``error`` is the refusal's message; it and every other text is bounded.
        """
        if self.log is not None:
            record = _endpoint_record(
                principal, route, status, latency_s, model, tokens_in, error, decisions
            )
            self.log.record(record, anonymous=principal is None)

    async def endpoint_durable(
        self,
        principal: Principal | None,
        route: str,
        *,
        status: int | str,
        latency_s: float,
        model: str | None = None,
        tokens_in: int | None = None,
        error: str | None = None,
        decisions: Mapping[str, str] | None = None,
    ) -> None:
        """:meth:`endpoint`, returning once the record is durable (see the class doc)."""
        if self.log is not None:
            record = _endpoint_record(
                principal, route, status, latency_s, model, tokens_in, error, decisions
            )
            await self._durable(record, anonymous=principal is None)

    @contextmanager
    def opened(self, route: str) -> Iterator[EndpointCall]:
        """One :meth:`endpoint` record for the block, however it ends.

        Set ``principal`` once known, and ``model``/``tokens_in``/``decisions`` as
        they are learnt; an exception is recorded with its status and message
        (a cancelled request as 499) and raised on.
        """
        call = EndpointCall()
        started = time.perf_counter()
        try:
            yield call
        except BaseException as exc:
            status, error = _refusal(exc)
            self.endpoint(call.principal, route, **call.fields(started, status, error))
            raise
        self.endpoint(call.principal, route, **call.fields(started, call.status, None))

    @asynccontextmanager
    async def opened_durable(self, route: str) -> AsyncIterator[EndpointCall]:
        """:meth:`opened` whose record is durable before the block's answer is returned.

        Leave the block with the response built but not sent (return it after the
        ``async with``). A refusal's record is awaited too, but its own exception
        stands if the record cannot be made durable (the loss is counted).
        """
        call = EndpointCall()
        started = time.perf_counter()
        try:
            yield call
        except BaseException as exc:
            status, error = _refusal(exc)
            fields = call.fields(started, status, error)
            with suppress(AuditUnavailableError):
                await self.endpoint_durable(call.principal, route, **fields)
            raise
        fields = call.fields(started, call.status, None)
        await self.endpoint_durable(call.principal, route, **fields)

    def admin(self, principal: Principal, action: str, details: dict[str, Any]) -> None:
        if self.log is not None:
            self.log.record(_admin_record(principal, action, details))

    async def admin_durable(
        self, principal: Principal, action: str, details: dict[str, Any]
    ) -> None:
        """:meth:`admin`, returning once the record is durable (see the class doc)."""
        if self.log is not None:
            await self._durable(_admin_record(principal, action, details), anonymous=False)

    async def _durable(self, record: dict[str, Any], *, anonymous: bool) -> None:
        assert self.log is not None
        try:
            await self.log.durable(record, anonymous=anonymous)
        except AuditUnavailableError:
            if self.log.settings.fail_closed:
                raise

    def _request_record(
        self,
        ctx: AuditedRequest,
        status: int | str,
        latency_s: float,
        deployment: str | None,
        usage: dict[str, Any] | None,
        answer: str | None,
    ) -> dict[str, Any]:
        principal, usage = ctx.principal, usage or {}
        capture = self.capturing
        return build_request_record(
            trace_id=ctx.request_id,
            principal=principal.key_id if principal else None,
            tenant=principal.tenant if principal else None,
            role=principal.role if principal else None,
            model=ctx.body.model if ctx.body else None,
            deployment=deployment,
            tokens_in=usage.get("prompt_tokens"),
            tokens_out=usage.get("completion_tokens"),
            latency_ms=latency_s * 1000,
            status=status,
            decisions=ctx.decisions,
            prompt=ctx.payload.get("messages")
            if capture and isinstance(ctx.payload, dict)
            else None,
            answer=answer if capture else None,
            end_user=principal.end_user.audited() if principal and principal.end_user else None,
        )


def _endpoint_record(
    principal: Principal | None,
    route: str,
    status: int | str,
    latency_s: float,
    model: str | None,
    tokens_in: int | None,
    error: str | None,
    decisions: Mapping[str, str] | None,
) -> dict[str, Any]:
    return build_request_record(
        trace_id=trace_id.get(),
        principal=principal.key_id if principal else None,
        tenant=principal.tenant if principal else None,
        role=principal.role if principal else None,
        model=model,
        deployment=None,
        tokens_in=tokens_in,
        tokens_out=None,
        latency_ms=latency_s * 1000,
        status=status,
        decisions=decisions or {},
        route=route,
        error=error,
    )


def _admin_record(principal: Principal, action: str, details: dict[str, Any]) -> dict[str, Any]:
    return build_admin_record(
        trace_id=trace_id.get(),
        principal=principal.key_id,
        tenant=principal.tenant,
        role=principal.role,
        action=action,
        status=200,
        target=_target(details),
    )


def _refusal(exc: BaseException) -> tuple[int, str]:
    """The status and message an exception leaving a route is recorded with."""
    if isinstance(exc, asyncio.CancelledError):
        return 499, "The client closed the request."
    mapped = map_exception(exc)
    return mapped.status_code, mapped.message


class EndpointCall:
    """What a route learns while it runs, for its :meth:`RequestAudit.opened` record."""

    __slots__ = ("decisions", "model", "principal", "status", "tokens_in")

    def __init__(self) -> None:
        self.principal: Principal | None = None
        self.status: int = 200
        self.model: str | None = None
        self.tokens_in: int | None = None
        self.decisions: dict[str, str] = {}

    def fields(self, started: float, status: int, error: str | None) -> dict[str, Any]:
        """The keyword arguments of :meth:`RequestAudit.endpoint` for this call."""
        return {
            "status": status,
            "latency_s": time.perf_counter() - started,
            "model": self.model,
            "tokens_in": self.tokens_in,
            "error": error,
            "decisions": self.decisions,
        }


def add_local_kek(data_dir: Path) -> str:
    """Generate a new KEK into the local key set and make it the active one; its id."""
    saved = data_dir / "audit-keys" / "settings.json"
    fields: dict[str, Any] = json.loads(saved.read_text())
    kek_id, kek = new_kek()
    fields["kek"][kek_id] = kek
    fields["active_kek"] = kek_id
    tmp = saved.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(fields, out)
    os.replace(tmp, saved)
    return kek_id


def _target(details: dict[str, Any]) -> str | None:
    target = details.get("target", details.get("key_id"))
    return str(target) if target else None
