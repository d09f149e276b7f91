"""The checks that confirm a personal-data or secret pattern's match, or turn it down.

Why a module of its own: :data:`.pii.DETECTORS` is one table read top to bottom in
priority order, pattern by pattern; what each pattern's match must also pass is here,
one :data:`Check` per kind of value: a checksum or number plan (:mod:`.validators`), a
context word nearby for weak formats (:func:`_near`: 28 characters before, 16 after), a
decoded JWT header, a password that is not a word. A check returns the normalised span
and the canonical value (digits without separators, a phone number with its country
code, a secret as the caller wrote it), or None.

A few checks take ``bare``: the same check without its context word
(:func:`as_bare`), for a value that follows a person's name and a separator
(王佳，G10832458), a record's shape that needs no label.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable

from functions.filtering import validators
from functions.filtering.normalise import Normalised

# (normalised start, normalised end, canonical value) or None when the check fails
Check = Callable[[re.Match[str], Normalised], "tuple[int, int, str] | None"]

_SEP = re.compile(r"[ \-]")
_NON_DIGIT = re.compile(r"\D")


def _near(norm: Normalised, start: int, end: int, words: re.Pattern[str]) -> bool:
    """Whether a context word is within 28 characters before or 16 after the span (English
    labels run long: "passport number on file to"; :data:`.output.CONTEXT`, 32, must cover
    this reach and a lookbehind or two)."""
    return bool(words.search(norm.text, max(0, start - 28), start)) or bool(
        words.search(norm.text, end, end + 16)
    )


_CARD_WORDS = re.compile(
    r"卡|账号|帐号|账户|帐户|银联|支付|转账|付款|收款|还款|有效期|"
    r"信用|card|visa|master|amex|express|discover|jcb|diners|unionpay|credit|account|acct|pay|"
    r"cvv|cid|expir"
)
_LANDLINE_WORDS = re.compile(
    r"电话|座机|固话|传真|致电|拨打|热线|总机|分机|联系|tel|phone|fax|call"
)
_PASSPORT_WORDS = re.compile(r"护照|证件|旅行证|passport|travel document")
_SSN_WORDS = re.compile(r"ssn|social security|社会安全|社保号")
_NANP_WORDS = re.compile(
    r"电话|手机|座机|致电|拨打|联系|传真|\b(?:phone|call|tel|cell|mobile|fax|contact|dial|text)"
)
_VERSION_WORDS = re.compile(r"版本|\b(?:version|ver\.?|v|release|build)[:\s]*$")


def _digits(m: re.Match[str], group: int = 0) -> str:
    return _SEP.sub("", m.group(group))


def id_card(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    value = _digits(m)
    return (m.start(), m.end(), value) if validators.prc_id(value) else None


def mobile(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    value = _digits(m, 1)
    return (m.start(), m.end(), value) if validators.mobile(value) else None


def landline(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    value = re.sub(r"\D", "", m.group(1))
    if not validators.landline(value):
        return None
    written_plain = m.group(1).isdigit()
    if written_plain and not _near(norm, m.start(), m.end(), _LANDLINE_WORDS):
        return None
    return m.start(), m.end(), value


def _grouped(raw: str) -> bool:
    groups = _SEP.split(raw)
    lengths = [len(g) for g in groups]
    fours = len(groups) >= 3 and all(n == 4 for n in lengths[:-1]) and 1 <= lengths[-1] <= 4
    return fours or lengths == [4, 6, 5] or lengths == [6, 13]


def card(m: re.Match[str], norm: Normalised, bare: bool = False) -> tuple[int, int, str] | None:
    raw = m.group()
    digits = _SEP.sub("", raw)
    if digits[0] in "01789":
        return None  # no scheme starts so (and every cut below keeps the first digit)
    # a greedy run may swallow a following group: try each separator cut, longest first
    # (the i-th separator, at ``end``, has ``end - i`` digits before it)
    cuts = [(len(raw), len(digits))]
    cuts += [(s.start(), s.start() - i) for i, s in enumerate(_SEP.finditer(raw))][::-1]
    for end, count in cuts:
        value = digits[:count]
        scheme = validators.card_scheme(value)
        if scheme is None:
            continue
        start, stop = m.start(), m.start() + end
        near = bare or _near(norm, start, stop, _CARD_WORDS)
        if near or _grouped(raw[:end]) or _stands_alone(value):
            return start, stop, value
    return None


def _stands_alone(value: str) -> bool:
    """Card numbers that need no context word: 15 digits after 34 or 37 (American
    Express) and 16 or 19 after 62 (UnionPay) that pass Luhn are one random number of
    that length in 500 and 1,000 (a Visa-shaped 16 digits: one in 100)."""
    if len(value) == 15:
        return value.startswith(("34", "37"))
    return len(value) in (16, 19) and value.startswith("62")


def card_type(canonical: str) -> str:
    return validators.card_scheme(canonical) or "CREDIT_CARD"


def ssn(m: re.Match[str], norm: Normalised, bare: bool = False) -> tuple[int, int, str] | None:
    value = _digits(m)
    if not validators.ssn(value):
        return None
    if m.group().count("-") != 2 and not bare and not _near(norm, m.start(), m.end(), _SSN_WORDS):
        return None
    return m.start(), m.end(), value


def nanp(m: re.Match[str], norm: Normalised, bare: bool = False) -> tuple[int, int, str] | None:
    value = _NON_DIGIT.sub("", m.group(1)) + m.group(3)
    if not validators.nanp(value):
        return None
    # written as bare digits it could be any ten-digit number: it needs a context word
    if m.group().isdigit() and not bare and not _near(norm, m.start(), m.end(), _NANP_WORDS):
        return None
    return m.start(), m.end(), "+1" + value


def as_bare(check: Callable[..., tuple[int, int, str] | None]) -> Check:
    """``check`` without its context word (see :attr:`.pii.Detector.bare`)."""

    def bare(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
        return check(m, norm, bare=True)

    return bare


def shape(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    return m.start(), m.end(), m.group()


def with_words(words: re.Pattern[str]) -> Check:
    def check(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
        ok = _near(norm, m.start(), m.end(), words)
        return (m.start(), m.end(), m.group()) if ok else None

    return check


def email(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    local = m.group(1)
    if ".." in local or local.endswith("."):
        return None
    return m.start(), m.end(), m.group()


def ipv4(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    if not validators.ipv4(m.group()):
        return None
    if _VERSION_WORDS.search(norm.text, max(0, m.start() - 12), m.start()):
        return None
    return m.start(), m.end(), m.group()


def ipv6(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    start, value = m.start(), m.group()
    if value.startswith(":") and not value.startswith("::"):
        start, value = start + 1, value[1:]  # a colon before it (also the folded full-width colon)
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError:
        return None
    if not any(len(group) >= 3 for group in value.split(":")):
        return None  # "a::b" is a path in Rust or C++, not an address
    return start, m.end(), address.compressed


def _original(m: re.Match[str], norm: Normalised, group: int = 0) -> tuple[int, int, str]:
    start, end = m.span(group)
    o_start, o_end = norm.span(start, end)
    return start, end, norm.original[o_start:o_end]


def secret(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    return _original(m, norm, 1 if m.lastindex else 0)


def aws(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    start, end, value = _original(m, norm)
    return (start, end, value) if re.fullmatch(r"(?:AKIA|ASIA)[A-Z0-9]{16}", value) else None


def jwt(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    start, end, value = _original(m, norm)
    header = value.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
    except (binascii.Error, ValueError):
        return None
    return (start, end, value) if decoded.lstrip().startswith(b"{") else None


def assignment(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    start, end, value = _original(m, norm, 1)
    plain = value.isalpha() and (value.islower() or value.isupper())
    if len(set(value)) < 4 or plain:
        return None  # "password is required", "token: ********"
    return start, end, value


# a passport number: a shape many codes share, so it needs a context word
passport = with_words(_PASSPORT_WORDS)
