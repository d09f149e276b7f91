"""End users of a frontend key: who may name them, from where, and what is refused."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry
from starlette.datastructures import Headers

from functions.context import ChatContext, Principal
from functions.endusers import EndUserMetrics, identify, make_identify, pseudonymiser
from functions.errors import InvalidRequestError
from functions.wire import ChatCompletionRequest

FRONTEND = Principal(key_id="key_owui", tenant="acme", trust_user_headers=True)
PLAIN = Principal(key_id="key_app", tenant="acme")
OWUI_NAME = "x-openwebui-user-name"
PSEUDONYM = pseudonymiser(b"p" * 32)
OWUI = {
    "x-openwebui-user-id": "3f2a9c1e-0b7d-4e5f-9a8b-1c2d3e4f5a6b",
    "x-openwebui-user-email": "alice@example.com",
    "x-openwebui-user-role": "user",
    "x-openwebui-user-name": "Alice M%C3%BCller",  # Open WebUI percent-encodes the name
}


def who(
    headers: dict[str, str] | list[tuple[str, str]],
    body_user: str | None = None,
    principal: Principal = FRONTEND,
) -> object:
    raw = headers.items() if isinstance(headers, dict) else headers
    encoded = [(k.encode(), v.encode("latin-1")) for k, v in raw]
    return identify(principal, Headers(raw=encoded), body_user, PSEUDONYM)


def test_open_webuis_headers_name_the_user_with_email_role_and_decoded_name() -> None:
    user = who(OWUI, body_user="session-123")
    assert user is not None
    assert (user.id, user.source) == (OWUI["x-openwebui-user-id"], "openwebui")
    assert (user.email, user.role, user.name) == ("alice@example.com", "user", "Alice Müller")
    assert user.audited() == {
        "id": OWUI["x-openwebui-user-id"],
        "pseudonym": user.pseudonym,
        "source": "openwebui",
        "email": "alice@example.com",
        "role": "user",
    }  # the name is not kept


def test_precedence_open_webui_then_the_generic_header_then_the_body() -> None:
    both = who({**OWUI, "x-enclave-user": "bob"}, body_user="carol")
    generic = who({"x-enclave-user": "bob"}, body_user="carol")
    body = who({}, body_user="carol")
    assert [u.id for u in (both, generic, body)] == [OWUI["x-openwebui-user-id"], "bob", "carol"]
    assert [u.source for u in (both, generic, body)] == ["openwebui", "header", "body"]
    assert who({}) is None  # nobody named: the key's own request


def test_a_key_without_the_flag_names_nobody_and_its_headers_are_not_even_read() -> None:
    hostile = {"x-enclave-user": "a b\tc" * 100, "x-openwebui-user-id": ";drop"}
    assert who(hostile, body_user="carol", principal=PLAIN) is None  # ignored, not a 400


def test_the_pseudonym_is_keyed_stable_and_per_key() -> None:
    one = who({"x-enclave-user": "alice@example.com"})
    again = who({"x-enclave-user": "alice@example.com"})
    other_key = who(
        {"x-enclave-user": "alice@example.com"}, principal=replace(FRONTEND, key_id="key_lobe")
    )
    assert one.pseudonym == again.pseudonym != other_key.pseudonym
    assert one.pseudonym.startswith("u_") and len(one.pseudonym) == 18
    assert "alice" not in one.pseudonym
    other_secret = identify(
        FRONTEND, Headers({"x-enclave-user": "alice@example.com"}), None, pseudonymiser(b"q" * 32)
    )
    assert other_secret is not None and other_secret.pseudonym != one.pseudonym


@pytest.mark.parametrize(
    ("headers", "param"),
    [
        ({"x-enclave-user": "a" * 129}, "x-enclave-user"),
        ({"x-enclave-user": "two words"}, "x-enclave-user"),
        ({"x-enclave-user": "tab\there"}, "x-enclave-user"),
        ({"x-enclave-user": "quote'd"}, "x-enclave-user"),
        ({"x-enclave-user": "caf\xe9"}, "x-enclave-user"),
        ({"x-openwebui-user-id": ""}, "x-openwebui-user-id"),
        ({"x-openwebui-user-id": "u1", "x-openwebui-user-email": "nope"}, "x-openwebui-user-email"),
        ({"x-openwebui-user-id": "u1", "x-openwebui-user-role": "ad min"}, "x-openwebui-user-role"),
        ({"x-openwebui-user-id": "u1", "x-openwebui-user-name": "Eve%00"}, "x-openwebui-user-name"),
        ({"x-openwebui-user-id": "u1", "x-openwebui-user-name": "Eve%0A"}, "x-openwebui-user-name"),
        ({"x-openwebui-user-id": "u1", "x-openwebui-user-name": "%FF"}, "x-openwebui-user-name"),
        ({"x-openwebui-user-id": "u1", "x-openwebui-user-name": "E" * 129}, OWUI_NAME),
        ([("x-enclave-user", "a"), ("x-enclave-user", "b")], "x-enclave-user"),
    ],
    ids=[
        "long",
        "space",
        "tab",
        "quote",
        "latin1",
        "empty-id",
        "email",
        "role",
        "nul-name",
        "newline-name",
        "bad-utf8-name",
        "long-name",
        "repeated",
    ],
)
def test_malformed_identities_are_400_naming_the_header(
    headers: dict[str, str] | list[tuple[str, str]], param: str
) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        who(headers)
    assert refused.value.status_code == 400 and refused.value.param == param


def test_a_body_user_that_is_no_identifier_is_400_for_a_frontend_key_only() -> None:
    with pytest.raises(InvalidRequestError) as refused:
        who({}, body_user="free text with spaces")
    assert refused.value.param == "user"
    assert who({}, body_user="free text with spaces", principal=PLAIN) is None


def test_the_step_puts_the_user_on_the_principal_and_counts_bounded_labels() -> None:
    registry = CollectorRegistry()
    step = make_identify(PSEUDONYM, EndUserMetrics(registry))
    body = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )

    def ctx(principal: Principal, headers: dict[str, str]) -> ChatContext:
        return ChatContext(request_id="t", headers=Headers(headers), principal=principal, body=body)

    named = asyncio.run(step(ctx(FRONTEND, {**OWUI, "x-openwebui-user-role": "superuser"})))
    own = asyncio.run(step(ctx(PLAIN, OWUI)))
    assert named.principal.end_user is not None
    assert named.decisions["end_user"] == f"{named.principal.end_user.pseudonym} (openwebui)"
    assert own.principal.end_user is None and "end_user" not in own.decisions

    def count(identity: str, role: str) -> float | None:
        labels = {"identity": identity, "role": role}
        return registry.get_sample_value("enclave_gateway_end_user_chats_total", labels)

    assert count("openwebui", "other") == 1  # an unknown role is not a label of its own
    assert count("key", "none") == 1
