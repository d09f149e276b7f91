"""End users behind a trusted frontend key: who, of one key's many users, is asking.

A chat frontend (Open WebUI, LobeChat, an intranet portal) holds one Enclave key
for all its users. A key created with ``--trust-user-headers`` (a *frontend key*)
may name the end user of each request; every other key cannot, and its requests
are the key's own, as with any OpenAI-compatible gateway.

Where a frontend key names its user, first match wins:

    X-OpenWebUI-User-Id   (+ -Email, -Role, -Name)   Open WebUI with
                                                      ENABLE_FORWARD_USER_INFO_HEADERS=true
    x-enclave-user                                    any frontend
    the body's ``user`` field                         OpenAI's own end-user field

Open WebUI's headers come first because Open WebUI sets them from its own session
on every request; the generic header is the next most deliberate; the body's
``user`` last, since OpenAI clients often fill it with something else (a session
id). For a key without the flag nothing here is read: the headers are ignored (not
refused: a frontend configured to forward them keeps working with an ordinary
key) and the body's ``user`` stays a plain OpenAI field passed to the model.

Every value is hostile: one header of each name, an id of at most 128 characters
from ``[A-Za-z0-9._@+:=-]``, an email of at most 254 that looks like one, a role
of at most 32 of ``[A-Za-z0-9_-]``, a name (Open WebUI percent-encodes it) of at
most 128 printable characters. Anything else is a 400 naming the header, before
any other step runs.

The end user is written to the audit record in full (id, email, role; the name is
not kept: the id already says who). The JSON log line, metrics and rate-limit
bucket keys carry only a *pseudonym*: ``u_`` and 16 hex digits of an HMAC, under
the key pepper, of the tenant, key and id, so logs and Redis hold no email
address and the pseudonym cannot be reversed by hashing a list of addresses. An
auditor joins a log line to its user through the audit record, which holds both.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import unquote

from prometheus_client import CollectorRegistry, Counter
from starlette.datastructures import Headers

from functions.context import ChatContext, ChatStep, Principal
from functions.errors import InvalidRequestError

Source = Literal["openwebui", "header", "body"]

OPENWEBUI_ID = "x-openwebui-user-id"
OPENWEBUI_EMAIL = "x-openwebui-user-email"
OPENWEBUI_ROLE = "x-openwebui-user-role"
OPENWEBUI_NAME = "x-openwebui-user-name"
ENCLAVE_USER = "x-enclave-user"
# every header that can carry an end user: read here, never sent upstream
USER_HEADERS = (OPENWEBUI_ID, OPENWEBUI_EMAIL, OPENWEBUI_ROLE, OPENWEBUI_NAME, ENCLAVE_USER)

_ID = re.compile(r"[A-Za-z0-9._@+:=-]{1,128}")
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[A-Za-z0-9.-]{1,189}")
_ROLE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_MAX_NAME = 128
# roles as metrics labels: Open WebUI's own, the rest counted as "other"
KNOWN_ROLES = frozenset({"admin", "user", "pending"})


@dataclass(frozen=True, slots=True)
class EndUser:
    """One end user of a frontend key, as the frontend named them."""

    id: str
    pseudonym: str  # u_ + 16 hex: for logs, metrics and limit keys (no PII)
    source: Source
    email: str | None = None
    role: str | None = None
    name: str | None = None

    def audited(self) -> dict[str, str]:
        """What the audit record keeps (the name is left out: the id says who)."""
        fields = {"id": self.id, "pseudonym": self.pseudonym, "source": self.source}
        if self.email is not None:
            fields["email"] = self.email
        if self.role is not None:
            fields["role"] = self.role
        return fields

    @property
    def role_label(self) -> str:
        """The role as a bounded metrics label."""
        if self.role is None:
            return "none"
        return self.role if self.role in KNOWN_ROLES else "other"


def _malformed(header: str, what: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid {header} header: {what}.", param=header)


def _one(headers: Headers, name: str) -> str | None:
    values = headers.getlist(name)
    if len(values) > 1:
        raise _malformed(name, "it may be sent once")
    return values[0] if values else None


def _checked(value: str, name: str, pattern: re.Pattern[str], what: str) -> str:
    if pattern.fullmatch(value) is None:
        raise _malformed(name, what)
    return value


def _name(raw: str) -> str:
    if len(raw) > 3 * _MAX_NAME:  # percent-encoded, three characters a byte at most
        raise _malformed(OPENWEBUI_NAME, f"at most {_MAX_NAME} characters")
    try:
        name = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise _malformed(OPENWEBUI_NAME, "not percent-encoded UTF-8") from None
    if len(name) > _MAX_NAME or not name.isprintable():
        raise _malformed(OPENWEBUI_NAME, f"at most {_MAX_NAME} printable characters")
    return name


def _id(value: str, name: str) -> str:
    return _checked(value, name, _ID, "1 to 128 of A-Z a-z 0-9 . _ @ + : = -")


def _openwebui(headers: Headers, user_id: str) -> dict[str, str | None]:
    email = _one(headers, OPENWEBUI_EMAIL)
    role = _one(headers, OPENWEBUI_ROLE)
    name = _one(headers, OPENWEBUI_NAME)
    return {
        "id": _id(user_id, OPENWEBUI_ID),
        "email": _checked(email, OPENWEBUI_EMAIL, _EMAIL, "not an email address")
        if email
        else None,
        "role": _checked(role, OPENWEBUI_ROLE, _ROLE, "1 to 32 of A-Z a-z 0-9 _ -")
        if role
        else None,
        "name": _name(name) if name else None,
    }


# pseudonym(tenant, key id, user id) -> "u_…"
Pseudonymise = Callable[[str, str, str], str]


def pseudonymiser(secret: bytes) -> Pseudonymise:
    """A keyed pseudonym: without ``secret`` (the key pepper) no one can tell whose it is."""
    key = hmac.new(secret, b"enclave end-user pseudonym", hashlib.sha256).digest()

    def pseudonym(tenant: str, key_id: str, user_id: str) -> str:
        message = "\x00".join((tenant, key_id, user_id)).encode()
        return "u_" + hmac.new(key, message, hashlib.sha256).hexdigest()[:16]

    return pseudonym


def identify(
    principal: Principal, headers: Headers, body_user: str | None, pseudonym: Pseudonymise
) -> EndUser | None:
    """The end user a frontend key names (None: the key's own request); 400 if malformed."""
    if not principal.trust_user_headers:
        return None
    fields: dict[str, str | None]
    source: Source
    if (owui := _one(headers, OPENWEBUI_ID)) is not None:
        fields, source = _openwebui(headers, owui), "openwebui"
    elif (generic := _one(headers, ENCLAVE_USER)) is not None:
        fields, source = {"id": _id(generic, ENCLAVE_USER)}, "header"
    elif body_user:
        fields, source = {"id": _id(body_user, "user")}, "body"
    else:
        return None
    user_id = fields.pop("id")
    assert user_id is not None
    tag = pseudonym(principal.tenant, principal.key_id, user_id)
    return EndUser(id=user_id, pseudonym=tag, source=source, **fields)


class EndUserMetrics:
    """Chats by who asked, with bounded labels only: never a label per user.

    Per-user figures (tokens, requests) are in the audit records, which name each
    user; a label per user would grow the metrics without bound.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.chats = Counter(
            "enclave_gateway_end_user_chats",
            "Chat requests by how the caller was identified (key: no end user named) "
            "and the end user's role (Open WebUI's roles; other; none)",
            ["identity", "role"],
            registry=registry,
        )

    def count(self, user: EndUser | None) -> None:
        if user is None:
            self.chats.labels("key", "none").inc()
        else:
            self.chats.labels(user.source, user.role_label).inc()


def make_identify(pseudonym: Pseudonymise, metrics: EndUserMetrics | None = None) -> ChatStep:
    """The chat step that names the end user on the principal (frontend keys only)."""

    async def end_user(ctx: ChatContext) -> ChatContext:
        user = identify(ctx.principal, ctx.headers, ctx.body.user, pseudonym)
        if metrics is not None:
            metrics.count(user)
        if user is None:
            return ctx
        principal = replace(ctx.principal, end_user=user)
        return ctx.decided("end_user", f"{user.pseudonym} ({user.source})", principal=principal)

    return end_user
