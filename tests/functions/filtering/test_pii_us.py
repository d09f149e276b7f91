"""US phone numbers (NANP) and American Express cards: formats, rules, look-alikes."""

from __future__ import annotations

import pytest

from functions.filtering import validators
from functions.filtering.normalise import normalise
from functions.filtering.pii import find_pii


def found(text: str) -> list[tuple[str, str, str]]:
    return [(f.type, f.rule, text[f.start : f.end]) for f in find_pii(normalise(text))]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("reach me at (415) 555-0132 today", "(415) 555-0132"),
        ("reach me at (415)555-0132 today", "(415)555-0132"),
        ("office 415-555-0132.", "415-555-0132"),
        ("office 415.555.0132.", "415.555.0132"),
        ("office +1 415 555 0132.", "+1 415 555 0132"),
        ("office 1-415-555-0132.", "1-415-555-0132"),
        ("office +1-415-555-0132x123 ext", "+1-415-555-0132x123"),
        ("office 001-415-555-0132.", "001-415-555-0132"),
        ("phone: 4155550132", "4155550132"),
        ("电话4155550132", "4155550132"),
        ("cell ４１５-５５５-０１３２", "４１５-５５５-０１３２"),
        ("call 415-555\u200b-0132 now", "415-555\u200b-0132"),
    ],
)
def test_us_phone_numbers(text: str, value: str) -> None:
    assert ("PHONE", "nanp", value) in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "order 4155550132 shipped",  # bare ten digits without a context word
        "call 115-555-0132",  # area code cannot start with 1
        "call 415-155-0132",  # nor the exchange
        "call 911-555-0132",  # N11 is a service code
        "call 415-911-0132",
        "call 415-555.0132",  # separators that disagree
        "SSN 536-22-1234",
        "date 2024-05-12 and 415-555-01321",
        "version 415.555.0132.7",
    ],
)
def test_us_phone_look_alikes(text: str) -> None:
    assert not [f for f in found(text) if f[1] == "nanp"]


def test_us_phone_beside_other_numbers() -> None:
    text = "SSN 536-22-1234, tel 415-555-0132, 手机13812345678, 座机010-62345678"
    types = [(t, v) for t, _, v in found(text)]
    assert ("SSN", "536-22-1234") in types
    assert ("PHONE", "415-555-0132") in types
    assert ("PHONE", "13812345678") in types
    assert ("LANDLINE", "010-62345678") in types


def test_nanp_validator() -> None:
    assert validators.nanp("4155550132")
    assert not validators.nanp("415555013")
    assert not validators.nanp("0155550132")
    assert not validators.nanp("4111550132")


@pytest.mark.parametrize(
    "text",
    [
        "American Express 3782 822463 10005",
        "3782-822463-10005",
        "card 3782 8224 6310 005",
        "Amex number: 378282246310005",
        "Jessica Newman: 371449635398431",  # plain, no context word: 34/37 + Luhn suffice
        "卡号３７１４４９６３５３９８４３１",
    ],
)
def test_amex(text: str) -> None:
    assert [t for t, _, _ in found(text) if t != "PERSON"] == ["CREDIT_CARD"]


@pytest.mark.parametrize(
    "text",
    [
        "ref 378282246310006",  # fails Luhn
        "ref 358282246310003",  # 15 digits, no scheme
        "ref 3782822463100051",  # 16 digits after 37: not an Amex length
    ],
)
def test_amex_look_alikes(text: str) -> None:
    assert not [t for t, _, _ in found(text) if t == "CREDIT_CARD"]
