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
from tests.functions.filtering.generate import Sample

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
# a fifth, split E, written before any of the work it measures (hospital, bank, government and
# HR text; role words before names, verbs after them, dialogue, enumerations). Its names are
# drawn wider than Faker's zh_CN list (131 given names): half pair a Faker surname with a
# given name from Faker's zh_TW list that GB2312 can encode (simplified-script names not in
# zh_CN's list), and English surnames are one time in five hyphenated (two Faker surnames)
# or one time in five Irish or Italian with an apostrophe (``_APOSTROPHE``). The detectors
# take nothing from these sources. Its own negatives (``NEGATIVES_E``) are role-word prose
# without a name and place names that are also first names.
ZH_E = [
    "建议{name}患者明日空腹复查血常规。",
    "经理{name}批准了这笔报销，请财务部尽快付款。",
    "今晨查房，{name}（{age}岁）体温正常，继续观察。",
    "护士长{name}已完成交接班记录。",
    "尊敬的{name}：您尾号8812的储蓄卡于今日消费256.00元。",
    "经审核，{name}的最低生活保障申请符合条件，户籍地址{addr}。",
    "人事部通知：{name}自下月起调任市场部副经理。",
    "{name}：好的，我下午三点到{addr}。",
    "面试记录：面试官{name2}认为{name}的沟通能力较强。",
    "本笔贷款由{name}担保，借款用途为装修。",
    "请{name}、{name2}和{name3}于周一到会议室参加培训。",
    "该户户主{name}家中共有三口人，居住在{addr}。",
    "{name}医生今天门诊停诊，请患者改约。",
    "转账给{name}五千元，备注：房租。",
    "{name}于2024年3月入职，现任技术部工程师。",
    "值班民警{name}接到报警后赶到{addr}。",
]
EN_E = [
    "Nurse {name} administered the 9 pm dose.",
    "Patient: {name}\nDOB: 03/14/1962\nMRN: 448213",
    "Agent {name} reviewed the claim and approved payment.",
    "The loan was approved by branch manager {name}.",
    "HR update: {name} transfers to the Denver office on Monday.",
    "{name} signed the consent form on behalf of {name2}.",
    "Case worker {name} visited the household at {addr}.",
    "Dr {name} ordered a chest X-ray.",
    "Applicant {name} submitted the benefits form on Tuesday.",
    "Please ask {name} to call the front desk.",
    "Interviewer: {name}. Candidate: {name2}.",
    "Account holder {name} reported the card stolen.",
    "{name} from accounting approved the refund.",
    "Officer {name} responded to a call at {addr}.",
]
# split F, written with E before any tuning and not run until the work on E was done: the
# figure for templates nobody looked at (insurance, school, court, logistics, chat)
ZH_F = [
    "理赔专员{name}已受理您的报案，案件号CL20240512。",
    "班主任{name}提醒家长注意孩子的饮食。",
    "原告{name}诉称，被告{name2}拖欠货款至今未还。",
    "快递员{name}说包裹放在{addr}的快递柜里了。",
    "谢谢{name}帮忙，改天请你吃饭！",
    "会计{name}负责核对本月的发票。",
    "出院小结：患者{name}，因肺炎住院七天，现已好转。",
    "{name}向派出所报案称手机被盗。",
]
EN_F = [
    "Claims adjuster {name} will contact you within two business days.",
    "Teacher {name} asked parents to sign the permission slip.",
    "Plaintiff {name} alleges that {name2} breached the contract.",
    "The courier left the parcel with {name} at {addr}.",
    "Thanks, {name}! See you at lunch.",
    "Accountant {name} is reconciling the March invoices.",
    "Discharge note: {name} was treated for pneumonia and is stable.",
    "{name} reported the phone stolen to the police.",
]
# split G, written after F's first run (whose one miss, 会计高雷负责, prompted a general
# rule) and run once at the end: real estate, travel, telecom, schools, referrals, news
ZH_G = [
    "租客{name}反映{addr}的热水器坏了，请物业尽快维修。",
    "机票已出，乘机人{name}，请提前两小时到达机场。",
    "您好，我是营业厅的{name}，您的套餐下月到期。",
    "教务处：{name}同学的补考申请已通过。",
    "转诊单：现将{name}转至上级医院心内科。",
    "记者从警方获悉，{name}已被依法刑事拘留。",
    "{name}和妻子在{addr}经营一家小餐馆。",
    "感谢{name}对本次活动的大力支持。",
]
EN_G = [
    "Tenant {name} reported a broken heater at {addr}.",
    "Passenger {name}, please proceed to gate 12.",
    "Hello, this is {name} from the billing team.",
    "The registrar approved {name}'s appeal.",
    "Referral: {name}, 62, to cardiology for evaluation.",
    "Police said {name} was arrested on Friday.",
    "{name} and his wife run a small diner at {addr}.",
    "We thank {name} for supporting this event.",
]
NEGATIVES_E = [
    "建议患者明日空腹复查血常规，如有不适及时就诊。",
    "经理批准了报销，请财务部尽快付款。",
    "请各部门负责人于周五前提交预算。",
    "您的银行卡已挂失，请勿继续使用。",
    "主任医师查房后调整了用药方案。",
    "高血压患者应低盐饮食，定期监测血压。",
    "申请人须提交身份证复印件和户口本。",
    "全体员工请注意：本周五下午进行消防演练。",
    "该项目由技术部负责，市场部配合。",
    "Jordan is a country in the Middle East.",
    "She grew up in Georgia and later moved to Virginia.",
    "Florence is famous for its museums.",
    "We drove from Austin to Dallas on Friday.",
    "Charlotte has one of the busiest airports in the South.",
    "Victoria is the capital of British Columbia.",
    "Sydney and Melbourne are the largest cities in Australia.",
    "Madison is the capital of Wisconsin.",
    "The nurse checked the chart and the agent closed the claim.",
]
_APOSTROPHE = [
    "O'Connor",
    "O'Brien",
    "O'Neill",
    "O'Sullivan",
    "O'Hara",
    "O'Reilly",
    "D'Angelo",
    "D'Souza",
    "O'Donnell",
    "D'Amico",
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
    ) -> None:
        self.rng = random.Random(seed)
        self.held_out = held_out
        self.split_e = split_e or split_f or split_g  # E to G draw names wider
        # the templates of the split asked for: the last one named wins (G over F over E…)
        chosen = (ZH_HELD, EN_HELD) if held_out else (ZH_TUNE, EN_TUNE)
        for wanted, zh_templates, en_templates in (
            (fresh, ZH_FRESH, EN_FRESH),
            (final, ZH_FINAL, EN_FINAL),
            (last, ZH_LAST, EN_LAST),
            (split_e, ZH_E, EN_E),
            (split_f, ZH_F, EN_F),
            (split_g, ZH_G, EN_G),
        ):
            if wanted:
                chosen = (zh_templates, en_templates)
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
        if self.split_e and self.rng.random() < 0.5:
            return self.zh.last_name() + self.rng.choice(self.wide_given)
        if self.faker:
            return self.zh.name()
        surname = self.rng.choice([*people.SURNAMES[:120], *people.COMPOUND_SURNAMES[:4]])
        given = sorted(people.GIVEN)
        return surname + "".join(self.rng.choice(given) for _ in range(self.rng.choice((1, 2))))

    def en_name(self) -> str:
        if self.split_e:
            first, roll = self.en.first_name(), self.rng.random()
            if roll < 0.2:
                return f"{first} {self.en.last_name()}-{self.en.last_name()}"
            if roll < 0.4:
                return f"{first} {self.rng.choice(_APOSTROPHE)}"
        if self.faker:
            return self.en.name() if self.rng.random() < 0.8 else self.en.first_name()
        first = self.rng.choice(sorted(people_en.first_names())).capitalize()
        return f"{first} {self.rng.choice(_EN_SURNAMES)}"

    def zh_addr(self) -> str:
        if self.faker:
            return self.zh.address()
        number = self.rng.randint(1, 999)
        road = self.rng.choice(_ROADS) + self.rng.choice(["路", "街", "大道"])
        room = f"{self.rng.randint(1, 30)}栋{self.rng.randint(101, 2999)}室"
        parts = [self.rng.choice(_CITIES), self.rng.choice(_DISTRICTS), f"{road}{number}号"]
        return "".join(parts[self.rng.randint(0, 1) :]) + (room if self.rng.random() < 0.5 else "")

    def en_addr(self) -> str:
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
) -> list[Sample]:
    """``n`` samples with names and addresses (half zh, half en), then the negatives.

    ``faker_values``: tuning templates with Faker's values (a second tuning set);
    ``fresh``, ``final``, ``last``, ``split_e``, ``split_f``, ``split_g``: the second to
    seventh held-out templates (with Faker's values when ``held_out``; E to G draw names
    wider, see ``ZH_E``)."""
    gen = ProseGenerator(
        seed, held_out, faker_values, fresh, final, last, split_e, split_f, split_g
    )
    out = [gen.sample(zh=i % 2 == 0) for i in range(n)]
    wide = split_e or split_f or split_g
    out += [Sample(text, ()) for text in NEGATIVES + (NEGATIVES_E if wide else [])]
    return out
