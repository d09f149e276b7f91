"""A seeded test-set generator for PII detection: Faker zh_CN + en_US, templates, hard negatives.

``samples(seed)`` returns texts with labelled spans ``(type, start, end)``. Values come
from Faker where it has them (Chinese mobiles, resident IDs, emails, IPs, US SSNs,
credit cards) and from small generators here otherwise (UnionPay cards, landlines,
passports, secrets). About a fifth of numeric values are disguised: full-width
digits, a zero-width space, spaces or hyphens inside. Hard negatives are texts
with look-alike numbers that must *not* be reported: IDs with a wrong check digit
or an impossible date, order numbers, timestamps, Luhn-valid numbers without an
issuer or context, version strings, MAC addresses, prices and the like.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

from faker import Faker

from functions.filtering.validators import luhn

Span = tuple[str, int, int]


@dataclass(frozen=True)
class Sample:
    text: str
    spans: tuple[Span, ...]
    kind: str = ""  # the LABELS key a positive was made for


ZH_TEMPLATES = [
    "我的{label}是{v}，麻烦帮我登记一下。",
    "{name}的{label}：{v}",
    "请核对{label}{v}是否正确",
    "客户{name}（{label} {v}）昨天来电咨询。",
    "{label}为{v}，请勿外传。",
]
EN_TEMPLATES = [
    "My {label} is {v}, please update the record.",
    "{name}'s {label}: {v}.",
    "Can you check whether {label} {v} is correct?",
    "Customer {name} ({label} {v}) called yesterday.",
    "Please use {label} {v} for the refund.",
]
# held-out templates for identifiers, written after the work on names and run once for
# the report (``samples(held_out=True)``): other wordings, other places in a sentence
ZH_HELD_TEMPLATES = [
    "麻烦把{label}改成{v}，谢谢！",
    "已核实，{name}提供的{label}（{v}）无误。",
    "{label}:{v}\n备注：加急",
    "客服记录：用户报出{label}{v}，要求查询。",
    "请勿在群里发{label}，比如{v}这种。",
]
EN_HELD_TEMPLATES = [
    "Update the {label} on file to {v} please.",
    "Verified: {name} gave {label} {v} over the phone.",
    "{label}:{v}\nNote: urgent",
    "Support log - caller read out {label} {v} and asked for a refund.",
    "Never post a {label} like {v} in the channel.",
]
LABELS = {
    "PHONE": ("手机号", "mobile number"),
    "PHONE_US": ("美国电话", "phone"),
    "LANDLINE": ("办公电话", "office phone"),
    "ID_CARD": ("身份证号", "ID number"),
    "BANK_CARD": ("银行卡号", "card number"),
    "CREDIT_CARD": ("信用卡号", "credit card"),
    "EMAIL": ("邮箱", "email"),
    "IPV4": ("服务器地址", "server IP"),
    "IPV6": ("服务器地址", "server address"),
    "PASSPORT": ("护照号码", "passport number"),
    "SSN": ("美国社会安全号", "SSN"),
    "SECRET": ("密钥", "key"),
}
# the entity type a sample kind is labelled with (US phones are PHONE, measured apart)
ENTITY = {"PHONE_US": "PHONE"}
_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


class Generator:
    def __init__(self, seed: int, held_out: bool = False) -> None:
        self.held_out = held_out
        self.rng = random.Random(seed)
        self.zh = Faker("zh_CN")
        self.en = Faker("en_US")
        self.zh.seed_instance(seed)
        self.en.seed_instance(seed + 1)

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(n))

    def luhn_complete(self, prefix: str, length: int) -> str:
        body = prefix + self.digits(length - len(prefix) - 1)
        return next(body + d for d in string.digits if luhn(body + d))

    def disguise(self, value: str) -> str:
        """Full-width digits, a zero-width space or separators, one time in five."""
        roll = self.rng.random()
        if roll < 0.07:
            return value.translate(_FULL_WIDTH)
        if roll < 0.14 and len(value) > 4:
            at = self.rng.randrange(1, len(value) - 1)
            return value[:at] + "\u200b" + value[at:]
        if roll < 0.2 and value.isdigit():
            return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        return value

    # --- values, one per entity type
    def phone(self) -> str:
        value = self.disguise(self.zh.phone_number())
        roll = self.rng.random()
        if roll < 0.1 and value.isdigit():
            return f"{value[:3]}-{value[3:7]}-{value[7:]}"
        return "+86 " + value if roll < 0.2 else value

    def us_phone(self) -> str:
        """Faker's formats (dashes, dots, ``(415)555-…``, ``+1-``, ``001-``, extensions)
        and the spaced ``+1 415 555 0132``; area code and exchange per the NANP."""
        area = str(self.rng.randint(2, 9)) + self.digits(2)
        exchange = str(self.rng.randint(2, 9)) + self.digits(2)
        if area[1:] == "11" or exchange[1:] == "11":
            return self.us_phone()
        line = self.digits(4)
        forms = [
            f"{area}-{exchange}-{line}",
            f"({area}) {exchange}-{line}",
            f"({area}){exchange}-{line}",
            f"{area}.{exchange}.{line}",
            f"+1 {area} {exchange} {line}",
            f"1-{area}-{exchange}-{line}",
            f"+1-{area}-{exchange}-{line}x{self.digits(3)}",
            f"001-{area}-{exchange}-{line}",
        ]
        if self.rng.random() < 0.5:
            return self.en.phone_number()
        return self.disguise(self.rng.choice(forms))

    def landline(self) -> str:
        code = self.rng.choice(["010", "020", "021", "022", "023", "024", "025", "027", "028"])
        code = (
            code if self.rng.random() < 0.5 else self.rng.choice(["0755", "0571", "0512", "0731"])
        )
        local = self.rng.choice("2345678") + self.digits(
            7 if len(code) == 3 else 6 + self.rng.randint(0, 1)
        )
        form = self.rng.random()
        if form < 0.4:
            return f"{code}-{local}"
        return f"({code}){local}" if form < 0.7 else f"{code} {local[:-4]} {local[-4:]}"

    def id_card(self) -> str:
        value = self.zh.ssn()
        return self.disguise(value.lower() if self.rng.random() < 0.2 else value)

    def bank_card(self) -> str:
        value = self.luhn_complete(
            "62" + self.rng.choice(["2202", "2848", "1700", "5880", "1226"]),
            self.rng.choice([16, 19]),
        )
        return (
            " ".join(value[i : i + 4] for i in range(0, len(value), 4))
            if self.rng.random() < 0.4
            else self.disguise(value)
        )

    def credit_card(self) -> str:
        kind = self.rng.choice(["visa16", "mastercard", "amex", "discover", "jcb"])
        if kind == "jcb":  # Faker's JCB numbers start 35xx outside the 3528-3589 range
            value = self.luhn_complete(str(self.rng.randint(3528, 3589)), 16)
        else:
            value = self.en.credit_card_number(card_type=kind)
        return (
            "-".join(value[i : i + 4] for i in range(0, len(value), 4))
            if self.rng.random() < 0.3
            else value
        )

    def email(self) -> str:
        return (self.zh if self.rng.random() < 0.5 else self.en).email()

    def ipv4(self) -> str:
        return self.en.ipv4_private() if self.rng.random() < 0.5 else self.en.ipv4_public()

    def ipv6(self) -> str:
        value = self.en.ipv6()
        return ipaddress.IPv6Address(value).compressed if self.rng.random() < 0.5 else value

    def passport(self) -> str:
        if self.rng.random() < 0.7:
            return self.rng.choice("EG") + self.digits(8)
        return "E" + self.rng.choice("ABCDEFHJKLMNPQRSTUVWXYZ") + self.digits(7)

    def ssn(self) -> str:
        value = self.en.ssn()
        return value if self.rng.random() < 0.7 else value.replace("-", "")

    def secret(self) -> str:
        alnum = string.ascii_letters + string.digits

        def token(n: int) -> str:
            return "".join(self.rng.choice(alnum) for _ in range(n))

        kind = self.rng.randrange(7)
        if kind == 0:
            return "sk-proj-" + token(48)
        if kind == 1:
            return "AKIA" + "".join(
                self.rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)
            )
        if kind == 2:
            return "ghp_" + token(36)
        if kind == 3:
            header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
            return f"{header.decode().rstrip('=')}.eyJ{token(30)}.{token(43)}"
        if kind == 4:
            body = "\n".join(token(64) for _ in range(4))
            return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
        if kind == 5:
            return "xoxb-" + self.digits(12) + "-" + token(24)
        return "AIza" + token(35)

    def value(self, type_: str) -> str:
        makers: dict[str, Callable[[], str]] = {
            "PHONE": self.phone,
            "PHONE_US": self.us_phone,
            "LANDLINE": self.landline,
            "ID_CARD": self.id_card,
            "BANK_CARD": self.bank_card,
            "CREDIT_CARD": self.credit_card,
            "EMAIL": self.email,
            "IPV4": self.ipv4,
            "IPV6": self.ipv6,
            "PASSPORT": self.passport,
            "SSN": self.ssn,
            "SECRET": self.secret,
        }
        return makers[type_]()

    def positive(self, type_: str) -> Sample:
        zh = self.rng.random() < 0.5
        if self.held_out:
            template = self.rng.choice(ZH_HELD_TEMPLATES if zh else EN_HELD_TEMPLATES)
        else:
            template = self.rng.choice(ZH_TEMPLATES if zh else EN_TEMPLATES)
        if self.rng.random() < 0.1:  # no label: the value must stand on its own
            template = "{name}，{v}。" if zh else "{name}: {v}"
        name = (self.zh if zh else self.en).name()
        label = LABELS[type_][0 if zh else 1]
        value = self.value(type_)
        head, tail = template.split("{v}")
        prefix = head.format(name=name, label=label)
        text = prefix + value + tail.format(name=name, label=label)
        kind = ENTITY.get(type_, type_)
        return Sample(text, ((kind, len(prefix), len(prefix) + len(value)),), type_)

    def negatives(self) -> list[str]:
        valid = self.zh.ssn()
        wrong_check = valid[:17] + str((int(valid[17]) + 1) % 10 if valid[17].isdigit() else 0)
        bad_date = valid[:10] + "13" + valid[12:]
        luhn_no_issuer = self.luhn_complete(self.rng.choice(["1", "7", "8", "9"]), 16)
        visa_no_context = self.luhn_complete("4", 16)
        return [
            f"订单号：{self.digits(1).replace('0', '1')}{self.digits(17)}，请查收。",
            f"身份证号码格式示例（校验位错误）{wrong_check}",
            f"这个号码{bad_date}的出生月份不存在。",
            f"订单号 {luhn_no_issuer} 已发货。",
            f"Tracking number {visa_no_context} shipped today.",
            f"timestamp={1600000000000 + self.rng.randrange(10**11)} ms",
            f"Unix time {1600000000 + self.rng.randrange(10**8)}",
            "version " + ".".join(str(self.rng.randint(0, 20)) for _ in range(4)),
            f"会议时间 2024-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d} 09:30:00",
            f"价格 ¥{self.rng.randint(1, 999)},{self.digits(3)},{self.digits(3)}.{self.digits(2)}",
            f"pi is about 3.{self.digits(14)}",
            f"MAC 00:1a:{self.digits(2)}:3c:4d:{self.digits(2)}",
            "use std::vector and a::b in C++",
            f"型号E{self.digits(8)}的零件库存充足",
            f"invoice {self.rng.randint(100000000, 999999999)} is due",
            f"code 9{self.digits(2)}-{self.digits(2)}-{self.digits(4)} is not an SSN",
            f"邮编{self.digits(6)}，QQ号{self.rng.randint(10000, 99999)}{self.digits(4)}",
            f"{self.rng.choice(['10', '11', '12'])}{self.digits(9)} 是一个流水号",
            "write to user@localhost or @someone on the forum",
            "sk-learn is a typo for scikit-learn; the password is required",
            "token: <your-token-here>, password: ********",
            f"电话会议编号 {self.digits(9)}",
            f"batch 2024{self.digits(12)}",
        ]


def samples(seed: int = 20240601, per_type: int = 500, held_out: bool = False) -> list[Sample]:
    """``per_type`` positives for each entity type, then the hard negatives, shuffled;
    ``held_out``: the held-out templates."""
    gen = Generator(seed, held_out)
    out = [gen.positive(t) for t in LABELS for _ in range(per_type)]
    for _ in range(per_type // 5):
        out += [Sample(text, ()) for text in gen.negatives()]
    gen.rng.shuffle(out)
    return out
