"""Names and addresses (PERSON, ADDRESS) in zh and en prose: a tuning set and a held-out set.

The two sets differ in more than the seed, so the held-out figure means something:

* ``tuning``: names composed from the detector's own surname and given-name lists
  (zh) and census first names with a short surname list (en); addresses composed here;
  templates ``*_TUNE``. The detectors were tuned on this set.
* ``held_out``: names and addresses from Faker (zh_CN, en_US: other sources than the
  detector's gazetteers), templates ``*_HELD`` that were written once and not tuned on.

Both carry the same hard negatives: prose with words that begin with a surname
character (高兴, 王国, 黄金), capitalised common words and brands, street-like words.
"""

from __future__ import annotations

import random
import re

from faker import Faker
from faker.providers.person import zh_CN as zh_cn_person
from faker.providers.person import zh_TW as zh_tw_person

from functions.filtering import people, people_en
from tests.functions.filtering import prose_templates_hi as hi
from tests.functions.filtering import prose_templates_jk as jk
from tests.functions.filtering.generate import Sample
from tests.functions.filtering.prose_templates_efg import (
    APOSTROPHE,
    EN_E,
    EN_F,
    EN_G,
    NEGATIVES_E,
    ZH_E,
    ZH_F,
    ZH_G,
)

ZH_TUNE = [
    "患者{name}，男，{age}岁，诊断为高血压。",
    "联系人：{name}，电话13812345678",
    "{name}的快递已送达{addr}。",
    "收件人：{name}\n地址：{addr}",
    "{name}先生您好，您的订单已发货。",
    "我和{name}昨天去了{addr}附近。",
    "姓名：{name} 住址：{addr}",
]
EN_TUNE = [
    "Patient {name} was admitted on Monday.",
    "Dear {name}, your order has shipped to {addr}.",
    "Contact: {name}, 415-555-0132",
    "{name} called about the invoice.",
    "Name: {name}\nAddress: {addr}",
    "Customer {name} lives at {addr}.",
]
ZH_HELD = [
    "{name}，{addr}",
    "请把文件交给{name}。",
    "主治医生{name}为病人做了手术。",
    "客户{name}（手机13912345678）投诉说快递没送到{addr}。",
    "{name}：我明天去{addr}拿东西。",
    "本合同由{name}签字确认。",
    "寄件人{name}，寄件地址{addr}，请尽快处理。",
    "{name}和{name2}是同事。",
    "病历摘要：{name}，{age}岁，住{addr}，主诉头痛三天。",
]
EN_HELD = [
    "{name}: 415-555-0132",
    "Please forward this to {name} at {addr}.",
    "Signed, {name}",
    "I met {name} at the conference; she lives at {addr}.",
    "{name}'s lab results are ready.",
    "Ship to: {name}, {addr}",
    "Mr. {name} and Dr. {name2} reviewed the chart.",
    "Billing address: {addr}. Cardholder: {name}.",
]
# a second held-out set, written after the figures on the first had been looked at
# (and a few general failures fixed): run once, for the report
ZH_FRESH = [
    "入院记录：{name}，女，{age}岁，现住{addr}，因胸痛入院。",
    "兹证明{name}同志系我单位职工。",
    "{name}老师，您好！家长会定于周五下午召开。",
    "订单备注：请送货至{addr}，收货人{name}。",
    "今天下午{name}打来电话，说想改期。",
    "紧急联系人 {name} 13800138000",
    "被告{name}，住{addr}。",
    "我叫{name}，来自{addr}。",
]
EN_FRESH = [
    "Discharge summary: {name}, {age}, of {addr}, was treated for pneumonia.",
    "Hi {name}, your appointment is confirmed.",
    "Emergency contact: {name} (spouse), 212-555-0187",
    "Please deliver to {name}, {addr}.",
    "From: {name}\nSubject: invoice",
    "According to {name}, the shipment left {addr} on time.",
    "{name} and {name2} attended the meeting.",
    "Tenant {name} has occupied {addr} since 2019.",
]
# a third held-out set, written before the last run and run once for the report
ZH_FINAL = [
    "快递单：收方{name}，收方地址{addr}，到付。",
    "关于{name}同学请假的说明",
    "会议纪要：{name}、{name2}出席，地点{addr}。",
    "【通知】请{name}于明日上午九点到人事处报到。",
    "病人姓名 {name}    床号 12    诊断 肺炎",
    "房屋坐落于{addr}，产权人{name}。",
    "{name}在朋友圈说她搬到了{addr}。",
    "尊敬的{name}客户：您的账单已出。",
]
EN_FINAL = [
    "Invoice to: {name}\n{addr}",
    "Our records show {name} moved from {addr} last spring.",
    "Referred by Dr. {name} for a follow-up MRI.",
    "{name} (DOB 1984-03-02) presented with chest pain.",
    "Lease holder: {name}; premises: {addr}.",
    "Thanks to {name} and {name2} for reviewing the draft.",
    "Return address: {addr}",
    "Re: claim filed by {name}",
]
# a fourth, written after C's fixes and run once for the report (not tuned on)
ZH_LAST = [
    "经查，{name}于2023年5月在{addr}租住一套公寓。",
    "投诉人：{name}；被投诉单位地址：{addr}",
    "{name}同学的家长请到{addr}领取录取通知书。",
    "本人{name}，身份证丢失，现居{addr}。",
    "主讲嘉宾{name}将分享创业经验。",
    "请联系社区网格员{name}了解详情。",
    "昨天{name}在{addr}附近捡到一个钱包。",
    "代理律师：{name}  执业证号：12345",
]
EN_LAST = [
    "Witness {name} stated that the car was parked outside {addr}.",
    "{name}, 47, a nurse from {addr}, was interviewed.",
    "Send the signed copy to {name} c/o {addr}.",
    "The account belongs to {name}.",
    "Interview notes — {name}:",
    "Speaker: {name}\nVenue: {addr}",
    "{name} has been our tenant at {addr} since March.",
    "We spoke with {name} yesterday about the refund.",
]


def _gb2312(text: str) -> bool:
    try:
        text.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


NEGATIVES = [
    "我很高兴见到你，王国的历史很长。",
    "黄金价格上涨，方法其实很简单。",
    "周末时间安排在高速公路上。",
    "张开双手，马上出发。",
    "城市的街道很干净，我在市区的路上。",
    "这个方案的关键在于成本和时间。",
    "他说明天去公司开会，安全第一。",
    "江山如画，林业发展很快，金融市场平稳。",
    "文件已经上传，请查看项目进度。",
    "常见问题：如何修改密码？",
    "Will you grant access to the May release?",
    "Apple and Amazon announced new products on Tuesday.",
    "We walked 3 miles down the road.",
    "The Main Street project is on track.",
    "Turn left at the next street and drive 2 blocks.",
    "Bill payment is due in June.",
    "Mark the date: April 5.",
    "Chase raised its rates again.",
    "Our team uses Python, Rust and Go.",
    "New York City has five boroughs.",
    "Please Review The Attached Document Before Friday.",
    "Open the Settings page and click Save Changes.",
]
_EN_SURNAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Garcia",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Martin",
    "Jackson",
    "Thompson",
    "White",
    "Lopez",
    "Lee",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
]
_ROADS = [
    "人民",
    "解放",
    "建设",
    "中山",
    "和平",
    "胜利",
    "新华",
    "文化",
    "东风",
    "青年",
    "长江",
    "黄河",
]
_CITIES = ["深圳市", "杭州市", "成都市", "武汉市", "南京市", "苏州市", "西安市", "长沙市"]
_DISTRICTS = [
    "南山区",
    "西湖区",
    "武侯区",
    "江汉区",
    "鼓楼区",
    "姑苏区",
    "雁塔区",
    "岳麓区",
    "朝阳县",
]
_EN_STREETS = ["Main", "Oak", "Pine", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park"]
_EN_SUFFIX = [
    "Street",
    "St",
    "Avenue",
    "Ave",
    "Road",
    "Rd",
    "Drive",
    "Dr",
    "Lane",
    "Ln",
    "Court",
    "Ct",
    "Blvd",
    "Way",
]
_EN_CITIES = [
    "Springfield",
    "Riverside",
    "Franklin",
    "Greenville",
    "Bristol",
    "Clinton",
    "Fairview",
    "Salem",
]
_STATES = ["CA", "NY", "TX", "IL", "WA", "OR", "MA", "GA", "FL", "OH"]


class ProseGenerator:
    def __init__(
        self,
        seed: int,
        held_out: bool,
        faker_values: bool | None = None,
        fresh: bool = False,
        final: bool = False,
        last: bool = False,
        split_e: bool = False,
        split_f: bool = False,
        split_g: bool = False,
        split_h: bool = False,
        split_i: bool = False,
        split_jk: str = "",
    ) -> None:
        self.rng = random.Random(seed)
        self.held_out = held_out
        self.split_e = split_e or split_f or split_g  # E to G draw names wider
        self.split_hi = split_h or split_i or bool(split_jk)  # H to K wider still (hi.py)
        # the templates of the split asked for: the last one named wins (G over F over E…)
        chosen = (ZH_HELD, EN_HELD) if held_out else (ZH_TUNE, EN_TUNE)
        for wanted, zh_templates, en_templates in (
            (fresh, ZH_FRESH, EN_FRESH),
            (final, ZH_FINAL, EN_FINAL),
            (last, ZH_LAST, EN_LAST),
            (split_e, ZH_E, EN_E),
            (split_f, ZH_F, EN_F),
            (split_g, ZH_G, EN_G),
            (split_h, hi.ZH_H, hi.EN_H),
            (split_i, hi.ZH_I, hi.EN_I),
        ):
            if wanted:
                chosen = (zh_templates, en_templates)
        chosen = jk.TEMPLATES[split_jk] if split_jk else chosen  # "J", "K": prose_templates_jk
        self._templates = {True: chosen[0], False: chosen[1]}
        self.faker = held_out if faker_values is None else faker_values
        self.zh, self.en = Faker("zh_CN"), Faker("en_US")
        self.zh.seed_instance(seed)
        self.en.seed_instance(seed + 1)
        zh_cn = set(zh_cn_person.Provider.first_names)
        self.wide_given = sorted(
            n for n in set(zh_tw_person.Provider.first_names) if _gb2312(n) and n not in zh_cn
        )

    def zh_name(self) -> str:
        if self.split_hi:
            return hi.zh_name(self.zh, self.rng, self.wide_given)
        if self.split_e and self.rng.random() < 0.5:
            return self.zh.last_name() + self.rng.choice(self.wide_given)
        if self.faker:
            return self.zh.name()
        surname = self.rng.choice([*people.SURNAMES[:120], *people.COMPOUND_SURNAMES[:4]])
        given = sorted(people.GIVEN)
        return surname + "".join(self.rng.choice(given) for _ in range(self.rng.choice((1, 2))))

    def en_name(self) -> str:
        if self.split_hi:
            return hi.en_name(self.en, self.rng, APOSTROPHE)
        if self.split_e:
            first, roll = self.en.first_name(), self.rng.random()
            if roll < 0.2:
                return f"{first} {self.en.last_name()}-{self.en.last_name()}"
            if roll < 0.4:
                return f"{first} {self.rng.choice(APOSTROPHE)}"
        if self.faker:
            return self.en.name() if self.rng.random() < 0.8 else self.en.first_name()
        first = self.rng.choice(sorted(people_en.first_names())).capitalize()
        return f"{first} {self.rng.choice(_EN_SURNAMES)}"

    def zh_addr(self) -> str:
        if self.split_hi:
            return hi.zh_addr(self.zh, self.rng)
        if self.faker:
            return self.zh.address()
        number = self.rng.randint(1, 999)
        road = self.rng.choice(_ROADS) + self.rng.choice(["路", "街", "大道"])
        room = f"{self.rng.randint(1, 30)}栋{self.rng.randint(101, 2999)}室"
        parts = [self.rng.choice(_CITIES), self.rng.choice(_DISTRICTS), f"{road}{number}号"]
        return "".join(parts[self.rng.randint(0, 1) :]) + (room if self.rng.random() < 0.5 else "")

    def en_addr(self) -> str:
        if self.split_hi:
            return hi.en_addr(self.en, self.rng)
        if self.faker:
            sep = self.rng.choice(["\n", ", "])
            return self.en.address().replace("\n", sep)
        street = f"{self.rng.randint(1, 9999)} {self.rng.choice(_EN_STREETS)} "
        street += self.rng.choice(_EN_SUFFIX)
        city = f"{self.rng.choice(_EN_CITIES)}, {self.rng.choice(_STATES)} "
        return f"{street}, {city}{self.rng.randint(10000, 99999)}"

    def sample(self, zh: bool) -> Sample:
        template = self.rng.choice(self._templates[zh])
        values = {
            "name": ("PERSON", self.zh_name() if zh else self.en_name()),
            "name2": ("PERSON", self.zh_name() if zh else self.en_name()),
            "addr": ("ADDRESS", self.zh_addr() if zh else self.en_addr()),
            "age": ("", str(self.rng.randint(18, 90))),
        }
        if "{name3}" in template:  # drawn last and only then: older splits stay as they were
            values["name3"] = ("PERSON", self.zh_name() if zh else self.en_name())
        if "{name_lf}" in template:  # "Last, First" (H and I)
            values["name_lf"] = ("PERSON", hi.en_name_last_first(self.en, self.rng))
        text, spans = "", []
        for piece in re.split(r"(\{\w+\})", template):
            if piece.startswith("{"):
                type_, value = values[piece[1:-1]]
                if type_:
                    spans.append((type_, len(text), len(text) + len(value)))
                text += value
            else:
                text += piece
        return Sample(text, tuple(spans))


def prose_samples(
    seed: int,
    held_out: bool,
    n: int = 400,
    faker_values: bool | None = None,
    fresh: bool = False,
    final: bool = False,
    last: bool = False,
    split_e: bool = False,
    split_f: bool = False,
    split_g: bool = False,
    split_h: bool = False,
    split_i: bool = False,
    split_jk: str = "",
) -> list[Sample]:
    """``n`` samples with names and addresses (half zh, half en), then the negatives.
    ``faker_values``: tuning templates with Faker's values; ``fresh`` to ``split_i``, and
    ``split_jk`` ("J", "K"): held-out templates B to K (see each module's docstring)."""
    flags = (fresh, final, last, split_e, split_f, split_g, split_h, split_i)
    gen = ProseGenerator(seed, held_out, faker_values, *flags, split_jk=split_jk)
    out = [gen.sample(zh=i % 2 == 0) for i in range(n)]
    wide = split_e or split_f or split_g or split_h or split_i or bool(split_jk)
    out += [Sample(text, ()) for text in NEGATIVES + (NEGATIVES_E if wide else [])]
    out += [Sample(text, ()) for text in (hi.NEGATIVES_HI if split_h or split_i else [])]
    out += [Sample(text, ()) for text in (jk.NEGATIVES_JK if split_jk else [])]
    return out
