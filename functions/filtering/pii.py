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

:data:`DETECTORS` is one table read top to bottom in priority order; the check each
pattern's match must pass (checksums, context words) is in :mod:`.pii_checks`.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from functions.filtering import people, people_en, places
from functions.filtering import pii_checks as checks
from functions.filtering.hints import HintIndex
from functions.filtering.normalise import Normalised


class Found(NamedTuple):
    type: str
    rule: str
    start: int  # original offsets
    end: int
    canonical: str


_L = r"(?<![0-9a-z])(?<!\d-)"
_R = r"(?![0-9a-z])(?!-\d)"
_S = r"[ \-]?"
# _L and a digit, written digit first: a pattern that starts with a character class lets
# the regex engine skip to the next digit in C instead of trying every position
_D = r"\d(?<![0-9a-z]\d)(?<!\d-\d)"
_DIGIT = re.compile(r"\d")
_NUMERIC = frozenset({"ID_CARD", "CARD", "SSN", "PHONE", "LANDLINE", "PASSPORT", "IPV4"})


def _run(lo: int, hi: int | None = None) -> str:
    """A number of ``lo`` to ``hi`` digits, one separator allowed between any two, at ``_L``."""
    return rf"{_D}(?:{_S}\d){{{lo - 1},{(hi or lo) - 1}}}"


@dataclass(frozen=True, slots=True)
class Detector:
    type: str
    rule: str
    pattern: re.Pattern[str]
    check: checks.Check
    # the pattern cannot match unless one of these substrings is in the text: most regex
    # passes are skipped on ordinary text (find_pii finds all hints in one pass: .hints)
    hints: tuple[str, ...] = ()
    # or cannot match unless this cheaper, digit-led pattern is found (a pattern that
    # starts with a lookbehind is tried at every position; this one is skipped to in C)
    gate: re.Pattern[str] | None = None
    # the check without its context word: what it passes stands when it follows a
    # person's name and a separator (王佳，G10832458; James Hester: 5648570047), a
    # record's shape that needs no label
    bare: checks.Check | None = None

    @property
    def numeric(self) -> bool:
        return self.type in _NUMERIC

    def applies(self, text: str) -> bool:
        if self.gate is not None and self.gate.search(text) is None:
            return False
        return not self.hints or any(hint in text for hint in self.hints)


def _d(
    type_: str,
    rule: str,
    pattern: str,
    check: checks.Check,
    *hints: str,
    bare: checks.Check | None = None,
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
        checks.secret,
        "-----begin",
    ),
    _d(
        "SECRET",
        "openai_key",
        r"(?<![a-z0-9_\-])sk-(?:proj-|ant-)?[a-z0-9_\-]{20,}",
        checks.secret,
        "sk-",
    ),
    _d(
        "SECRET",
        "stripe_key",
        r"(?<![a-z0-9])[sr]k_(?:live|test)_[a-z0-9]{16,}",
        checks.secret,
        "k_",
    ),
    _d(
        "SECRET",
        "aws_key",
        r"(?<![a-z0-9])(?:akia|asia)[a-z0-9]{16}(?![a-z0-9])",
        checks.aws,
        "akia",
        "asia",
    ),
    _d(
        "SECRET",
        "github_token",
        r"(?<![a-z0-9])(?:gh[pousr]_[a-z0-9]{36,}|github_pat_[a-z0-9_]{50,})",
        checks.secret,
        "_",
    ),
    _d("SECRET", "slack_token", r"(?<![a-z0-9])xox[abprs]-[a-z0-9\-]{10,}", checks.secret, "xox"),
    _d(
        "SECRET",
        "google_key",
        r"(?<![a-z0-9])aiza[a-z0-9_\-]{35}(?![a-z0-9_\-])",
        checks.secret,
        "aiza",
    ),
    _d(
        "SECRET",
        "jwt",
        r"(?<![a-z0-9_\-])ey[a-z0-9_\-]{8,}\.ey[a-z0-9_\-]{8,}\.[a-z0-9_\-]{8,}",
        checks.jwt,
        ".ey",
    ),
    # whitespace bounded: a streamed answer's live tail can then hold a key word's reach
    _d("SECRET", "bearer", r"\bbearer\s{1,64}([a-z0-9\-._~+/]{20,}=*)", checks.secret, "bearer"),
    _d(
        "SECRET",
        "assignment",
        rf"(?:{SECRET_KEYS})[\"']?\s{{0,64}}(?:[:=]|\bis\b|是|为)\s{{0,64}}[\"']?"
        r"([^\s\"'`,;。、<>{}()\[\]]{6,128})",
        checks.assignment,
        *("key", "secret", "token", "passw", "pwd", "密码", "口令", "密钥", "令牌"),
    ),
    _d(
        "EMAIL",
        "email",
        rf"(?<![a-z0-9._%+\-])([a-z0-9](?:[a-z0-9._%+\-]{{0,62}}[a-z0-9_%+\-])?)@{_DOMAIN}"
        r"(?![a-z0-9\-]|\.[a-z0-9])",
        checks.email,
        "@",
    ),
    _d("ID_CARD", "prc_id", rf"{_run(17)}{_S}[0-9x]{_R}", checks.id_card),
    _d("CARD", "card", rf"{_run(13, 19)}{_R}", checks.card, bare=checks.as_bare(checks.card)),
    _d(
        "SSN",
        "ssn",
        rf"{_D}\d{{2}}([ \-]?)\d{{2}}\1\d{{4}}{_R}",
        checks.ssn,
        bare=checks.as_bare(checks.ssn),
    ),
    _d(
        "PHONE",
        "mobile",
        rf"{_L}(?:(?:\+|00)86{_S})?(1{_S}[3-9](?:{_S}\d){{9}}){_R}",
        checks.mobile,
    ),
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
        checks.nanp,
        bare=checks.as_bare(checks.nanp),
        # exactly ten digits when bare: not every mainland mobile (11) passes the gate
        gate=re.compile(r"\d{3}[ \-.)]{1,2}\d{3}[ \-.]?\d{4}|\d(?<!\d\d)\d{9}(?!\d)"),
    ),
    _d(
        "LANDLINE",
        "landline",
        rf"{_L}((?:\(0\d{{2,3}}\)\s?|0\d{{2,3}}{_S})[2-9]\d{{2,3}}{_S}\d{{4}}){_R}",
        checks.landline,
    ),
    _d(
        "PASSPORT",
        "prc_passport",
        rf"{_L}(?:[eg]\d{{8}}|e[a-hj-np-z]\d{{7}}){_R}",
        checks.passport,
        bare=checks.shape,
    ),
    _d(
        "IPV6",
        "ipv6",
        r"(?<![0-9a-z])(?:[0-9a-f]{0,4}:){2,8}[0-9a-f]{0,4}(?![0-9a-z:])",
        checks.ipv6,
        ":",
    ),
    _d("IPV4", "ipv4", r"(?<![0-9a-z.])(?:\d{1,3}\.){3}\d{1,3}(?![0-9a-z]|\.\d)", checks.ipv4, "."),
)
_HINTS = HintIndex([d.hints for d in DETECTORS])  # the hinted ones, found in one pass
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
    hinted = _HINTS.candidates(text)
    for index, detector in enumerate(DETECTORS):
        if index not in hinted or (detector.numeric and not has_digits):
            continue
        if detector.gate is not None and detector.gate.search(text) is None:
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
            type_ = checks.card_type(canonical) if detector.type == "CARD" else detector.type
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
