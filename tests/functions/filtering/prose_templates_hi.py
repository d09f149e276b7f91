"""Held-out prose splits H and I: templates, and the wider names and addresses they draw.

Both were written before anyone read the detectors' internals for them, in registers the
earlier splits lack: waybills, prescription slips, judgments, kindergarten and community
notices, leases and deeds, transfer memos, chat logs with nicknames (老王, 王总: not
labelled, they are no full names), after-sales messages, onboarding forms, minutes, CSV
rows; in English intake forms, shipping labels, dockets, leases, rosters, Slack lines,
e-mail signatures, CSV rows and "Last, First" fields.

Values stay Faker's, drawn wider than A to G draw them (the detectors take nothing from
here): Chinese names with a compound surname one time in ten; English names with a middle
initial, a hyphenated first name, or "Last, First" order (``{name_lf}``); Chinese
addresses with 栋/单元/室, 弄, 号楼, 村/组, 开发区/工业园, some without city; English
ones with Apt/Unit/Suite and PO boxes. Labels follow the older splits: the span is the
value only, a title (先生, Dr.) stays outside it.
"""

from __future__ import annotations

import random

from faker import Faker

ZH_H = [
    "【速运】运单号SF1402938475566 寄件人：{name} 收件人：{name2} 收件地址：{addr}",
    "处方笺 科别：内科 姓名：{name} 性别：女 年龄：{age}岁 Rp：阿莫西林胶囊×24粒 医师：{name2}",
    "姓名,电话,地址\n{name},13912345678,{addr}",
    "老王：@{name} 明天的货你去{addr}提一下\n{name2}：收到，王总",
    "本院认为，被告人{name}以非法占有为目的，秘密窃取他人财物，其行为已构成盗窃罪。",
    "各位家长：明天幼儿园组织春游，请{name}小朋友的家长于八点前送孩子到园。",
    "居委会通知：{addr}的住户请于本周六到社区服务站领取新门禁卡，联系人{name}。",
    "甲方（出卖人）：{name}\n乙方（买受人）：{name2}\n房屋坐落：{addr}",
    "转账成功！收款人：{name}，附言：三月份货款，付款人{name2}。",
    "亲，您的售后申请已通过，请将商品寄回{addr}，收件人{name}，备注订单号即可。",
    "入职登记表  姓名 {name}  民族 汉  现住址 {addr}  紧急联系人 {name2}",
    "会议纪要\n主持：{name}\n记录：{name2}\n参会人员：{name}、{name2}、{name3}",
    "小李啊，你跟{name}说一声，周末聚餐改到{addr}了。",
    "据群众举报，{addr}一出租屋内有人聚众赌博，房主{name}已被传唤。",
    "{name}同志：经研究决定，聘任你为项目部经理，自即日起生效。",
    "快递到了没？——到了，{name}帮我签收的，放在{addr}门卫室。",
]
EN_H = [
    "PATIENT INTAKE FORM\nName (Last, First): {name_lf}\nDOB: 04/11/1979\nAddress: {addr}",
    "SHIP TO:\n{name}\n{addr}\nTRACKING # 1Z999AA10123456784",
    "Case No. 2:23-cv-01456. {name}, Plaintiff, v. {name2}, Defendant.",
    'This Lease is made between {name} ("Landlord") and {name2} ("Tenant") for {addr}.',
    "Grade 3 roster: {name}, {name2}, {name3}",
    "[9:41 AM] {name}: can someone cover my shift tomorrow?",
    "Best regards,\n{name}\nSenior Account Manager\n{addr}",
    'name,phone,address\n"{name}",555-0199,"{addr}"',
    "Rx #448812 for {name}: take one tablet twice daily. Prescriber: Dr. {name2}",
    "Wire memo: payment to {name} for invoice 2291",
    "Claimant {name} states the water damage at {addr} began in May.",
    "Onboarding checklist for {name}: laptop, badge, parking pass.",
    "Minutes: {name} moved to approve the budget; {name2} seconded.",
    "I authorize {name} to pick up my child from kindergarten.",
    "Return to sender: {name}, {addr}",
    "Docket entry 14: ORDER granting motion filed by {name_lf}.",
]
ZH_I = [
    "取件码5-3-2012，{name}您好，您的包裹已到{addr}驿站，请凭码领取。",
    "药品名称：布洛芬缓释胶囊  用法：口服，一次1粒  取药人：{name}  审核药师：{name2}",
    "上诉人（原审原告）：{name}，住{addr}。被上诉人（原审被告）：{name2}。",
    "张姐：{name}今天请假了，她女儿发烧\n我：好的，让她好好休息",
    "业主{name}与租户{name2}就{addr}的房屋租赁事宜达成如下协议：",
    "幼儿园接送卡  幼儿姓名：{name}  班级：小二班  接送人：{name2}（爸爸）",
    "保单号P8812340021，被保险人{name}，受益人{name2}，投保地址{addr}。",
    "{name},男,{age},{addr},13800001111",
    "各位邻居，本周三停水，{addr}的住户请提前储水。网格员：{name}",
    "新员工{name}今天报到，工位在三楼，请{name2}带他熟悉一下环境。",
    "刘总说下午的会让{name}和{name2}一起参加。",
    "退货地址：{addr}（{name} 收）",
    "经法院主持调解，{name}一次性赔偿{name2}医疗费两万元。",
    "谁知道{name}现在住哪？好像搬到{addr}了",
    "汇款人：{name}  汇入行：工商银行  用途：学费",
    "签到表：1.{name} 2.{name2} 3.{name3}",
]
EN_I = [
    "Defendant: {name_lf}\nDocket No. CR-2024-0088\nHearing set for June 3.",
    "Deliver to {name}, {addr}. Leave at front door.",
    "Tenant shall pay rent to {name} at {addr} on the first of each month.",
    "Student: {name_lf} | Homeroom: 5B | Guardian: {name2}",
    "{name}  10:02 AM\nhey, is the standup moved?",
    "--\n{name} | Paralegal | Morgan & Lee LLP\n{addr}",
    '"{name_lf}",555-0143,"{addr}"',
    "Rx: Lisinopril 10 mg. Patient: {name}. Pharmacist: {name2}.",
    "Memo: Zelle to {name} for the rent split",
    "Adjuster notes: insured {name} was not home; spoke with neighbor {name2}.",
    "Action item: {name} to send the revised deck to {name2} by Friday.",
    "Emergency contact (Last, First): {name_lf}",
    "Welcome aboard, {name}! Your desk is on the 4th floor.",
    "The court grants {name}'s motion to dismiss.",
    "Mailing address for {name}: {addr}",
    "Parent/guardian signature: {name}   Date: 09/02/2024",
]
NEGATIVES_HI = [
    "各位家长请注意，明天幼儿园放假一天。",
    "处方药须凭医师处方购买，请遵医嘱服用。",
    "本院认为，原审判决认定事实清楚，适用法律正确。",
    "收到，王总，我马上去办。",
    "老王说明天下雨，小李说不会。",
    "姓名,电话,地址",
    "请将退货商品寄回原发货地址，并注明订单号。",
    "Ship to the address on file unless the customer asks otherwise.",
    "Tenant shall keep the premises clean and in good repair.",
    "Apt. 4B is vacant; the unit in Suite 200 is leased.",
    "name,phone,address",
    "Rx refills are available at the front counter.",
    "Grant Street and Lincoln Avenue are closed for the parade.",
]
_COMPOUND = ["欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "令狐", "慕容", "尉迟", "公孙"]
_HYPHENATED_FIRST = ["Jean-Luc", "Mary-Kate", "Anne-Marie", "Jo-Ann", "Jean-Paul", "Lee-Ann"]
_ESTATES = ["阳光", "锦绣", "翠湖", "金桂", "华府", "东方", "幸福", "书香", "滨江", "紫荆"]
_ESTATE_KINDS = ["花园", "家园", "小区", "苑", "名邸", "新村"]


def zh_name(fake: Faker, rng: random.Random, wide_given: list[str]) -> str:
    """Faker's surname (or a compound one) with a given name from zh_CN or zh_TW."""
    surname = rng.choice(_COMPOUND) if rng.random() < 0.1 else fake.last_name()
    given = rng.choice(wide_given) if rng.random() < 0.5 else fake.first_name()
    return surname + given


def en_name(fake: Faker, rng: random.Random, apostrophe: list[str]) -> str:
    """First and last, with a middle initial, a hyphen or an apostrophe now and then."""
    first, roll = fake.first_name(), rng.random()
    last = rng.choice(apostrophe) if rng.random() < 0.15 else fake.last_name()
    if roll < 0.15:
        return f"{rng.choice(_HYPHENATED_FIRST)} {last}"
    if roll < 0.35:
        return f"{first} {fake.random_uppercase_letter()}. {last}"
    if roll < 0.45:
        return f"{first} {last}-{fake.last_name()}"
    if roll < 0.55:
        return first
    return f"{first} {last}"


def en_name_last_first(fake: Faker, rng: random.Random) -> str:
    """ "Last, First" as forms and dockets write it, sometimes capitals or an initial."""
    last, first = fake.last_name(), fake.first_name()
    if rng.random() < 0.2:
        last = last.upper()
    if rng.random() < 0.3:
        first += f" {fake.random_uppercase_letter()}."
    return f"{last}, {first}"


def zh_addr(fake: Faker, rng: random.Random) -> str:
    """One of six shapes, a third of the time without province and city."""
    n, room = rng.randint(1, 999), rng.randint(101, 2806)
    estate = rng.choice(_ESTATES) + rng.choice(_ESTATE_KINDS)
    district, street = fake.district() + "区", fake.street_name()
    shapes = [
        f"{district}{street}{n}号{estate}{rng.randint(1, 30)}栋{rng.randint(1, 6)}单元{room}室",
        f"{district}{street}{n}弄{rng.randint(1, 80)}号{room}室",
        f"{district}{street}{n}号院{rng.randint(1, 20)}号楼{rng.randint(1, 4)}单元{room}",
        f"{fake.city_name()}县{fake.city_name()}镇{fake.last_name()}家村{rng.randint(1, 12)}组",
        f"{fake.city_name()}经济技术开发区{street}{n}号",
        f"{district}{fake.city_name()}工业园{rng.randint(1, 9)}栋{room}",
    ]
    roll = rng.random()
    if roll < 0.2:
        return fake.address()
    shape = rng.choice(shapes)
    if roll < 0.5:
        return estate + f"{rng.randint(1, 30)}栋{room}室" if "栋" in shape else shape
    return fake.province() + fake.city() + shape


def en_addr(fake: Faker, rng: random.Random) -> str:
    """Faker's address, or one with Unit/Apt/Suite written first, or a PO box."""
    sep, roll = rng.choice(["\n", ", "]), rng.random()
    city = f"{fake.city()}, {fake.state_abbr()} {fake.postcode()}"
    if roll < 0.2:
        box = rng.choice(["PO Box", "P.O. Box", "P. O. Box"])
        return f"{box} {rng.randint(1, 99999)}{sep}{city}"
    if roll < 0.4:
        unit = rng.choice(["Unit", "Apt", "Apt.", "Suite", "#"])
        unit += ("" if unit == "#" else " ") + f"{rng.randint(1, 40)}{rng.choice('ABCD')}"
        return f"{fake.street_address()}, {unit}{sep}{city}"
    return str(fake.address()).replace("\n", sep)
