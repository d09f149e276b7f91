"""Checksums and number plans that turn a digit pattern into a likely real value.

A pattern alone over-matches badly: any 16 digits pass Luhn one time in ten, so
the detectors in :mod:`~functions.filtering.pii` only accept what also passes these
checks (called from :mod:`~functions.filtering.pii_checks`; where a check is weak, a
context word is needed too).
"""

from __future__ import annotations

import datetime
import re

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
# GB 11643-1999: weights of the first 17 digits, and the check character per remainder
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10x98765432"
# GB/T 2260 province codes (first two digits); 83 is the Taiwan residents' permit
_PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
    | {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83}
)
# mainland mobile number blocks in use (first three digits)
_MOBILE_BLOCKS = frozenset(
    [f"13{d}" for d in range(10)]
    + ["145", "146", "147", "148", "149", "150", "151", "152", "153"]
    + ["155", "156", "157", "158", "159", "162", "165", "166", "167"]
    + [f"17{d}" for d in range(9)]
    + [f"18{d}" for d in range(10)]
    + [f"19{d}" for d in range(10)]
)


def luhn(digits: str) -> bool:
    """The Luhn (mod 10) check of a string of ASCII digits."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def prc_id(value: str, today: datetime.date | None = None) -> bool:
    """An 18-character PRC resident ID: province, a real birth date, and the check digit."""
    if len(value) != 18 or not value[:17].isdigit() or int(value[:2]) not in _PROVINCES:
        return False
    try:
        born = datetime.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if not datetime.date(1900, 1, 1) <= born <= (today or datetime.date.today()):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17].lower()


def mobile(digits: str) -> bool:
    """An 11-digit mainland mobile number in a block that is in use."""
    return len(digits) == 11 and digits[:3] in _MOBILE_BLOCKS


def nanp(digits: str) -> bool:
    """A ten-digit North American number: area code and exchange ``[2-9]XX``, neither
    an ``N11`` service code (411, 911)."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    area, exchange = digits[:3], digits[3:6]
    return all(part[0] >= "2" and part[1:] != "11" for part in (area, exchange))


def landline(digits: str) -> bool:
    """Area code plus local number: 010/02x take 8 digits, other codes 7 or 8."""
    if not digits.startswith("0") or digits.startswith("00"):
        return False
    if digits[1] in "12":
        return len(digits) == 11 and digits[3] in "23456789"
    return len(digits) in (11, 12) and digits[4] in "23456789"


def card_scheme(digits: str) -> str | None:
    """``BANK_CARD`` (UnionPay), ``CREDIT_CARD`` (international schemes) or ``None``.

    The issuer prefix and length must agree, and the number must pass Luhn.
    """
    n = len(digits)
    if not 13 <= n <= 19:
        return None
    if digits.startswith("62") and n >= 16:
        return "BANK_CARD" if luhn(digits) else None
    two, four = int(digits[:2]), int(digits[:4])
    international = (
        (digits[0] == "4" and n in (13, 16, 19))  # Visa
        or ((51 <= two <= 55 or 2221 <= four <= 2720) and n == 16)  # Mastercard
        or (two in (34, 37) and n == 15)  # American Express
        or ((digits.startswith(("6011", "65")) or 644 <= int(digits[:3]) <= 649) and n >= 16)
        or (3528 <= four <= 3589 and n >= 16)  # JCB
        or ((300 <= int(digits[:3]) <= 305 or two in (36, 38, 39)) and n >= 14)  # Diners
    )
    return "CREDIT_CARD" if international and luhn(digits) else None


def ipv4(value: str) -> bool:
    """Four dotted decimal octets, each 0 to 255 without leading zeros (as ``ipaddress``)."""
    return _IPV4.fullmatch(value) is not None


def ssn(digits: str) -> bool:
    """A US SSN that the SSA could issue: no 000/666/9xx area, 00 group or 0000 serial."""
    if len(digits) != 9 or not digits.isdigit():
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return digits not in ("078051120", "219099999")  # the famous published samples
