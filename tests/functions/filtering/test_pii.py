"""PII and secret detectors: true positives, evasions, and the hard negatives they must skip."""

from __future__ import annotations

import datetime
import ipaddress
import random

import pytest

from functions.filtering import validators
from functions.filtering.normalise import normalise
from functions.filtering.pii import find_pii

ID = "11010519491231002X"  # the standard's own example


def found(text: str) -> list[tuple[str, str]]:
    return [(f.type, text[f.start : f.end]) for f in find_pii(normalise(text))]


@pytest.mark.parametrize(
    ("text", "type_", "value"),
    [
        ("身份证11010519491231002X。", "ID_CARD", ID),
        ("id: 110105 19491231 002x", "ID_CARD", "110105 19491231 002x"),
        ("手机13812345678谢谢", "PHONE", "13812345678"),
        ("call +86 138-1234-5678 now", "PHONE", "+86 138-1234-5678"),
        ("手机１３８\u200b1234 5678", "PHONE", "１３８\u200b1234 5678"),
        ("办公室010-62345678", "LANDLINE", "010-62345678"),
        ("tel (0755)88889999", "LANDLINE", "(0755)88889999"),
        ("座机01062345678", "LANDLINE", "01062345678"),
        ("卡号6222021234567890128", "BANK_CARD", "6222021234567890128"),
        ("6222 0212 3456 7894", "BANK_CARD", "6222 0212 3456 7894"),
        ("visa card 4111111111111111", "CREDIT_CARD", "4111111111111111"),
        ("amex 3782 822463 10005", "CREDIT_CARD", "3782 822463 10005"),
        ("5555-5555-5555-4444", "CREDIT_CARD", "5555-5555-5555-4444"),
        ("请发到zhang.san+cv@example.com.cn谢谢", "EMAIL", "zhang.san+cv@example.com.cn"),
        ("邮箱：Li_Lei@Mail.Example.org。", "EMAIL", "Li_Lei@Mail.Example.org"),
        ("server 192.168.1.10.", "IPV4", "192.168.1.10"),
        ("地址：2001:db8::8a2e:370:7334", "IPV6", "2001:db8::8a2e:370:7334"),
        ("护照号码E12345678", "PASSPORT", "E12345678"),
        ("passport no. EA1234567", "PASSPORT", "EA1234567"),
        ("SSN 536-22-1234", "SSN", "536-22-1234"),
        ("social security number 536221234", "SSN", "536221234"),
        (
            "OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t",
            "SECRET",
            "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t",
        ),
        ("aws AKIAIOSFODNN7EXAMPLE", "SECRET", "AKIAIOSFODNN7EXAMPLE"),
        ("token ghp_" + "a1B2" * 9, "SECRET", "ghp_" + "a1B2" * 9),
        ("密码：Hunter2!x", "SECRET", "Hunter2!x"),
        ("Authorization: Bearer abcDEF123456ghiJKL789xyz", "SECRET", "abcDEF123456ghiJKL789xyz"),
    ],
)
def test_true_positives(text: str, type_: str, value: str) -> None:
    assert (type_, value) in found(text)


def test_jwt_and_private_key_blocks_are_secrets() -> None:
    jwt = (
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
        ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    )
    assert found(f"jwt={jwt}")[0] == ("SECRET", jwt)
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAKC\n-----END RSA PRIVATE KEY-----"
    assert found(f"here:\n{key}\nthanks") == [("SECRET", key)]
    truncated = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA"
    assert found(truncated) == [("SECRET", truncated)]


@pytest.mark.parametrize(
    "text",
    [
        "订单号 110105194912310021",  # wrong check digit
        "编号 110105194913310028",  # month 13
        "编号 991105194912310025",  # no such province
        "order 2024011512345678",  # 16 digits, no issuer
        "timestamp 1712345678901 ms",
        "unix 1712345678",
        "tracking 4111111111111111 shipped",  # Luhn and issuer, but no card context
        "流水号 79927398713",  # Luhn-valid, no issuer
        "流水号 12345678901",  # not a mobile block
        "version 1.2.3.4",
        "256.1.1.1 is not an address",
        "MAC 00:1a:2b:3c:4d:5e at 12:30:45",
        "use std::vector and a::b",
        "型号E12345678库存充足",  # passport shape, no context
        "invoice 536221234 is due",  # SSN shape, no context
        "code 900-12-3456 and 000-12-3456",  # impossible SSN areas
        "write to user@localhost or @someone",
        "价格 ¥1,234,567.89，pi 3.14159265358979",
        "sk-learn; the password is required; token: <your-token>; password: ********",
        "aws akiaiosfodnn7example",  # AWS keys are upper case
        "会议 2024-01-15 09:30:00",
    ],
)
def test_hard_negatives(text: str) -> None:
    assert found(text) == []


def test_numbers_glued_to_letters_or_digits_are_not_split_out() -> None:
    assert found("SO13812345678") == []
    assert found("913812345678") == []
    assert found("138123456789") == []


def test_a_phone_inside_an_email_is_one_email() -> None:
    kinds = [t for t, _ in found("13812345678@qq.com")]
    assert "EMAIL" in kinds  # the engine keeps the email over the overlapping phone


def test_validators() -> None:
    assert validators.prc_id(ID)
    assert not validators.prc_id("11010520991231002X", today=datetime.date(2024, 1, 1))
    assert validators.luhn("79927398713") and not validators.luhn("79927398710")
    assert validators.card_scheme("4111111111111111") == "CREDIT_CARD"
    assert validators.card_scheme("6222021234567890128") == "BANK_CARD"
    assert validators.card_scheme("79927398713") is None
    assert validators.landline("01062345678") and not validators.landline("01012345678")
    assert validators.ssn("536221234") and not validators.ssn("666221234")
    assert validators.mobile("13812345678") and not validators.mobile("12812345678")


def test_the_ipv4_check_agrees_with_ipaddress() -> None:
    def reference(value: str) -> bool:
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            return False
        return True

    rng = random.Random(11)
    octets = ["0", "00", "01", "1", "9", "10", "99", "100", "199", "200", "249", "250", "255"]
    octets += ["256", "300", "999", "000", "010", "\u0663", "1a", ""]
    for _ in range(20_000):
        value = ".".join(rng.choice(octets) for _ in range(rng.choice((3, 4, 4, 4, 5))))
        assert validators.ipv4(value) == reference(value), value


def test_a_unionpay_number_stands_alone_but_not_a_look_alike() -> None:
    valid = "6222021234567890128"  # 19 digits, 62, Luhn
    assert sorted(found(f"王伟，{valid}。")) == [("BANK_CARD", valid), ("PERSON", "王伟")]
    assert not [t for t, _ in found("编号 6222021234567890127") if t == "BANK_CARD"]  # Luhn
    assert not [t for t, _ in found("编号 62220212345678903") if t == "BANK_CARD"]  # 17


@pytest.mark.parametrize(
    ("text", "type_", "value"),
    [
        ("王佳，G10832458。", "PASSPORT", "G10832458"),
        ("张利，4257068571136521。", "CREDIT_CARD", "4257068571136521"),
        ("James Hester: 5648570047", "PHONE", "5648570047"),
        ("王玉梅，448831303。", "SSN", "448831303"),
    ],
)
def test_a_bare_value_after_a_name_is_a_record(text: str, type_: str, value: str) -> None:
    """A weak format with no label stands when it follows a person's name."""
    assert (type_, value) in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "型号E12345678的零件库存充足",  # no name before it
        "Tracking number 4111111111111111 shipped today.",
        "张伟，订单E12345678已发货",  # a word between the name and the value
        "invoice 448831303 is due",
    ],
)
def test_a_bare_value_without_a_name_needs_its_label(text: str) -> None:
    assert [t for t, _ in found(text) if t != "PERSON"] == []
