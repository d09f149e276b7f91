"""Personal data and secrets: patterns on normalised text, confirmed by validation.

Entity types (the placeholder names): ``SECRET`` (API keys, tokens, private key
blocks, ``password=…``), ``EMAIL``, ``ID_CARD`` (PRC resident ID), ``BANK_CARD``
(UnionPay), ``CREDIT_CARD`` (Visa, Mastercard, Amex, Discover, JCB, Diners),
``SSN``, ``PHONE`` (mainland mobile; North American numbers, rule ``nanp``),
``LANDLINE``, ``PASSPORT`` (PRC), ``IPV6``, ``IPV4``; and ``PERSON`` and ``ADDRESS``,
read from the shape of prose rather than a pattern (:mod:`.people`, :mod:`.people_en`,
:mod:`.places`).
:data:`DETECTORS` is in priority order: when two findings overlap the engine keeps
the earlier type (an email wins over the phone number that is its local part).

Numbers tolerate one space or hyphen between any two digits (``138 1234 5678``);
a number must not touch a letter or digit on either side, but CJK text may touch
it (``手机13812345678``). Weak formats need a context word nearby: bank cards
(unless written in groups of four), landlines written without a separator,
passports, SSNs not written ``123-45-6789``, and US phone numbers written as ten bare
digits. A 15-digit American Express number (34/37, Luhn) and a 16- or 19-digit UnionPay
number (62, Luhn) stand on their own. A weak format with no context word (a passport,
a bare SSN or card number, ten bare digits) also stands when it follows a person's name
and a separator (王佳，G10832458): a record's shape is its label.

Past 400 lines on purpose: :data:`DETECTORS` is one table read top to bottom in priority
order, with each detector's check beside it; split up, the order would be scattered.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from functions.filtering import people, people_en, places, validators
from functions.filtering.normalise import Normalised


class Found(NamedTuple):
    type: str
    rule: str
    start: int  # original offsets
    end: int
    canonical: str


# (normalised start, normalised end, canonical value) or None when the check fails
Check = Callable[[re.Match[str], Normalised], "tuple[int, int, str] | None"]

_L = r"(?<![0-9a-z])(?<!\d-)"
_R = r"(?![0-9a-z])(?!-\d)"
_S = r"[ \-]?"
# _L and a digit, written digit first: a pattern that starts with a character class lets
# the regex engine skip to the next digit in C instead of trying every position
_D = r"\d(?<![0-9a-z]\d)(?<!\d-\d)"
_SEP = re.compile(r"[ \-]")
_DIGIT = re.compile(r"\d")
_NON_DIGIT = re.compile(r"\D")
_NUMERIC = frozenset({"ID_CARD", "CARD", "SSN", "PHONE", "LANDLINE", "PASSPORT", "IPV4"})


def _run(lo: int, hi: int | None = None) -> str:
    """A number of ``lo`` to ``hi`` digits, one separator allowed between any two, at ``_L``."""
    return rf"{_D}(?:{_S}\d){{{lo - 1},{(hi or lo) - 1}}}"


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


def _id_card(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    value = _digits(m)
    return (m.start(), m.end(), value) if validators.prc_id(value) else None


def _mobile(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    value = _digits(m, 1)
    return (m.start(), m.end(), value) if validators.mobile(value) else None


def _landline(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
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


def _card(m: re.Match[str], norm: Normalised, bare: bool = False) -> tuple[int, int, str] | None:
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


def _card_type(canonical: str) -> str:
    return validators.card_scheme(canonical) or "CREDIT_CARD"


def _ssn(m: re.Match[str], norm: Normalised, bare: bool = False) -> tuple[int, int, str] | None:
    value = _digits(m)
    if not validators.ssn(value):
        return None
    if m.group().count("-") != 2 and not bare and not _near(norm, m.start(), m.end(), _SSN_WORDS):
        return None
    return m.start(), m.end(), value


def _nanp(m: re.Match[str], norm: Normalised, bare: bool = False) -> tuple[int, int, str] | None:
    value = _NON_DIGIT.sub("", m.group(1)) + m.group(3)
    if not validators.nanp(value):
        return None
    # written as bare digits it could be any ten-digit number: it needs a context word
    if m.group().isdigit() and not bare and not _near(norm, m.start(), m.end(), _NANP_WORDS):
        return None
    return m.start(), m.end(), "+1" + value


def _bare(check: Callable[..., tuple[int, int, str] | None]) -> Check:
    """``check`` without its context word (see :attr:`Detector.bare`)."""

    def bare(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
        return check(m, norm, bare=True)

    return bare


def _shape(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    return m.start(), m.end(), m.group()


def _with_words(words: re.Pattern[str]) -> Check:
    def check(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
        ok = _near(norm, m.start(), m.end(), words)
        return (m.start(), m.end(), m.group()) if ok else None

    return check


def _email(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    local = m.group(1)
    if ".." in local or local.endswith("."):
        return None
    return m.start(), m.end(), m.group()


def _ipv4(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    if not validators.ipv4(m.group()):
        return None
    if _VERSION_WORDS.search(norm.text, max(0, m.start() - 12), m.start()):
        return None
    return m.start(), m.end(), m.group()


def _ipv6(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
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


def _secret(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    return _original(m, norm, 1 if m.lastindex else 0)


def _aws(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    start, end, value = _original(m, norm)
    return (start, end, value) if re.fullmatch(r"(?:AKIA|ASIA)[A-Z0-9]{16}", value) else None


def _jwt(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    start, end, value = _original(m, norm)
    header = value.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
    except (binascii.Error, ValueError):
        return None
    return (start, end, value) if decoded.lstrip().startswith(b"{") else None


def _assignment(m: re.Match[str], norm: Normalised) -> tuple[int, int, str] | None:
    start, end, value = _original(m, norm, 1)
    plain = value.isalpha() and (value.islower() or value.isupper())
    if len(set(value)) < 4 or plain:
        return None  # "password is required", "token: ********"
    return start, end, value


@dataclass(frozen=True, slots=True)
class Detector:
    type: str
    rule: str
    pattern: re.Pattern[str]
    check: Check
    # the pattern cannot match unless one of these substrings is in the text: a cheap
    # ``in`` test that skips most regex passes on ordinary text
    hints: tuple[str, ...] = ()
    # or cannot match unless this cheaper, digit-led pattern is found (a pattern that
    # starts with a lookbehind is tried at every position; this one is skipped to in C)
    gate: re.Pattern[str] | None = None
    # the check without its context word: what it passes stands when it follows a
    # person's name and a separator (王佳，G10832458; James Hester: 5648570047), a
    # record's shape that needs no label
    bare: Check | None = None

    @property
    def numeric(self) -> bool:
        return self.type in _NUMERIC

    def applies(self, text: str) -> bool:
        if self.gate is not None and self.gate.search(text) is None:
            return False
        return not self.hints or any(hint in text for hint in self.hints)


def _d(
    type_: str, rule: str, pattern: str, check: Check, *hints: str, bare: Check | None = None
) -> Detector:
    return Detector(type_, rule, re.compile(pattern), check, hints, bare=bare)


SECRET_KEYS = (
    r"api[_\-]?key|apikey|secret[_\-]?key|client[_\-]?secret|access[_\-]?token|auth[_\-]?token"
    r"|private[_\-]?token|\btoken|\bsecret|password|passwd|\bpwd|密码|口令|密钥|令牌"
)
_DOMAIN = r"(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}"

DETECTORS: tuple[Detector, ...] = (
    _d(
        "SECRET",
        "private_key",
        r"-----begin [a-z0-9 ]*private key-----[\s\S]*?(?:-----end [a-z0-9 ]*private key-----|\Z)",
        _secret,
        "-----begin",
    ),
    _d(
        "SECRET",
        "openai_key",
        r"(?<![a-z0-9_\-])sk-(?:proj-|ant-)?[a-z0-9_\-]{20,}",
        _secret,
        "sk-",
    ),
    _d("SECRET", "stripe_key", r"(?<![a-z0-9])[sr]k_(?:live|test)_[a-z0-9]{16,}", _secret, "k_"),
    _d(
        "SECRET",
        "aws_key",
        r"(?<![a-z0-9])(?:akia|asia)[a-z0-9]{16}(?![a-z0-9])",
        _aws,
        "akia",
        "asia",
    ),
    _d(
        "SECRET",
        "github_token",
        r"(?<![a-z0-9])(?:gh[pousr]_[a-z0-9]{36,}|github_pat_[a-z0-9_]{50,})",
        _secret,
        "_",
    ),
    _d("SECRET", "slack_token", r"(?<![a-z0-9])xox[abprs]-[a-z0-9\-]{10,}", _secret, "xox"),
    _d("SECRET", "google_key", r"(?<![a-z0-9])aiza[a-z0-9_\-]{35}(?![a-z0-9_\-])", _secret, "aiza"),
    _d(
        "SECRET",
        "jwt",
        r"(?<![a-z0-9_\-])ey[a-z0-9_\-]{8,}\.ey[a-z0-9_\-]{8,}\.[a-z0-9_\-]{8,}",
        _jwt,
        ".ey",
    ),
    # whitespace bounded: a streamed answer's live tail can then hold a key word's reach
    _d("SECRET", "bearer", r"\bbearer\s{1,64}([a-z0-9\-._~+/]{20,}=*)", _secret, "bearer"),
    _d(
        "SECRET",
        "assignment",
        rf"(?:{SECRET_KEYS})[\"']?\s{{0,64}}(?:[:=]|\bis\b|是|为)\s{{0,64}}[\"']?"
        r"([^\s\"'`,;。、<>{}()\[\]]{6,128})",
        _assignment,
        *("key", "secret", "token", "passw", "pwd", "密码", "口令", "密钥", "令牌"),
    ),
    _d(
        "EMAIL",
        "email",
        rf"(?<![a-z0-9._%+\-])([a-z0-9](?:[a-z0-9._%+\-]{{0,62}}[a-z0-9_%+\-])?)@{_DOMAIN}"
        r"(?![a-z0-9\-]|\.[a-z0-9])",
        _email,
        "@",
    ),
    _d("ID_CARD", "prc_id", rf"{_run(17)}{_S}[0-9x]{_R}", _id_card),
    _d("CARD", "card", rf"{_run(13, 19)}{_R}", _card, bare=_bare(_card)),
    _d("SSN", "ssn", rf"{_D}\d{{2}}([ \-]?)\d{{2}}\1\d{{4}}{_R}", _ssn, bare=_bare(_ssn)),
    _d("PHONE", "mobile", rf"{_L}(?:(?:\+|00)86{_S})?(1{_S}[3-9](?:{_S}\d){{9}}){_R}", _mobile),
    # NANP: (415) 555-0132, 415-555-0132, 415.555.0132, +1 415 555 0132, 1-415-555-0132,
    # 001-415-555-0132; the separators between the three groups must agree
    Detector(
        "PHONE",
        "nanp",
        re.compile(
            rf"{_L}(?:(?:\+|00)?1[ \-.]?)?"
            r"(\([2-9]\d\d\) ?[2-9]\d\d[ \-.]?|[2-9]\d\d([ \-.]?)[2-9]\d\d\2)(\d{4})"
            r"(?: ?(?:x|ext\.?) ?\d{1,6})?(?![0-9a-z])(?![\-.]\d)"
        ),
        _nanp,
        bare=_bare(_nanp),
        # exactly ten digits when bare: not every mainland mobile (11) passes the gate
        gate=re.compile(r"\d{3}[ \-.)]{1,2}\d{3}[ \-.]?\d{4}|\d(?<!\d\d)\d{9}(?!\d)"),
    ),
    _d(
        "LANDLINE",
        "landline",
        rf"{_L}((?:\(0\d{{2,3}}\)\s?|0\d{{2,3}}{_S})[2-9]\d{{2,3}}{_S}\d{{4}}){_R}",
        _landline,
    ),
    _d(
        "PASSPORT",
        "prc_passport",
        rf"{_L}(?:[eg]\d{{8}}|e[a-hj-np-z]\d{{7}}){_R}",
        _with_words(_PASSPORT_WORDS),
        bare=_shape,
    ),
    _d(
        "IPV6",
        "ipv6",
        r"(?<![0-9a-z])(?:[0-9a-f]{0,4}:){2,8}[0-9a-f]{0,4}(?![0-9a-z:])",
        _ipv6,
        ":",
    ),
    _d("IPV4", "ipv4", r"(?<![0-9a-z.])(?:\d{1,3}\.){3}\d{1,3}(?![0-9a-z]|\.\d)", _ipv4, "."),
)
PRIORITY = {"SECRET": 0, "EMAIL": 1, "ID_CARD": 2, "BANK_CARD": 3, "CREDIT_CARD": 3}
PRIORITY |= {"SSN": 4, "PHONE": 5, "LANDLINE": 6, "PASSPORT": 7, "IPV6": 8, "IPV4": 9}
PRIORITY |= {"ADDRESS": 10, "PERSON": 11}
# names and addresses: read from the shape of prose, not from a pattern (see people, places)
PROSE = frozenset({"PERSON", "ADDRESS"})
_HAS_CJK = re.compile(r"[\u4e00-\u9fff]")


def find_pii(norm: Normalised, pos: int = 0, prose: bool = True) -> list[Found]:
    """Every validated finding in ``norm`` (overlaps included; the engine resolves them).

    ``pos``: the first normalised index a finding may start at; what comes before it
    is context only (lookbehinds, context words), as for a stream's released text.
    ``prose``: whether to look for names and addresses too.
    """
    found: list[Found] = []
    bare: list[Found] = []
    text = norm.text
    has_digits = _DIGIT.search(text, pos) is not None
    for detector in DETECTORS:
        if not detector.applies(text) or (detector.numeric and not has_digits):
            continue
        for m in detector.pattern.finditer(text, pos):
            checked = detector.check(m, norm)
            into = found
            if checked is None and prose and detector.bare is not None:
                checked, into = detector.bare(m, norm), bare
            if checked is None:
                continue
            start, end, canonical = checked
            o_start, o_end = norm.span(start, end)
            type_ = _card_type(canonical) if detector.type == "CARD" else detector.type
            into.append(Found(type_, detector.rule, o_start, o_end, canonical))
    if prose:
        names = _prose(norm, pos, has_digits)
        found += names + _after_names(norm.original, bare, names)
    return found


_NAME_GAP = frozenset(" \t,，:：;；")


def _after_names(original: str, bare: list[Found], names: list[Found]) -> list[Found]:
    """The findings in ``bare`` that follow a person's name and one to three separators
    (a set look-up per finding: linear in their number)."""
    ends = {f.end for f in names if f.type == "PERSON"}
    return [f for f in bare if _follows(original, f.start, ends)]


def _follows(original: str, start: int, ends: set[int]) -> bool:
    at = start
    while at > 0 and start - at < 3 and original[at - 1] in _NAME_GAP:
        at -= 1
        if at in ends:
            return True
    return False


def _prose(norm: Normalised, pos: int, has_digits: bool) -> list[Found]:
    """Names and addresses (the canonical form of a name is its lower-cased text)."""
    spans: list[tuple[str, tuple[int, int, str]]] = []
    if _HAS_CJK.search(norm.text, pos):
        spans += [("PERSON", s) for s in people.zh_names(norm, pos)]
        spans += [("ADDRESS", s) for s in places.zh_addresses(norm, pos)]
    if not norm.original.islower():
        spans += [("PERSON", s) for s in people_en.en_names(norm, pos)]
    if has_digits:
        spans += [("ADDRESS", s) for s in places.en_addresses(norm, pos)]
    found = []
    inside = _inside_addresses(spans)
    for type_, (start, end, rule) in spans:
        if type_ == "PERSON" and inside(start, end):
            continue  # 5004 Anthony Via: a street named after a person
        o_start, o_end = norm.span(start, end)
        found.append(Found(type_, rule, o_start, o_end, " ".join(norm.text[start:end].split())))
    return found


def _inside_addresses(
    spans: list[tuple[str, tuple[int, int, str]]],
) -> Callable[[int, int], bool]:
    """Whether a span lies inside an address: a bisection over the addresses' starts and
    the running maximum of their ends (log time a span, whatever the input)."""
    addresses = sorted((s, e) for type_, (s, e, _) in spans if type_ == "ADDRESS")
    starts = [s for s, _ in addresses]
    reach, top = [], -1
    for _, e in addresses:
        top = max(top, e)
        reach.append(top)

    def inside(start: int, end: int) -> bool:
        i = bisect.bisect_right(starts, start) - 1
        return i >= 0 and reach[i] >= end

    return inside
