"""Held-out prose templates E to G (``generate_prose.py`` composes the samples).

Kept apart so that the generator stays small; the history of each split is in
``test_quality.py`` by ``SPLITS``.
"""

from __future__ import annotations

# a fifth, split E, written before any of the work it measures (hospital, bank, government and
# HR text; role words before names, verbs after them, dialogue, enumerations). Its names are
# drawn wider than Faker's zh_CN list (131 given names): half pair a Faker surname with a
# given name from Faker's zh_TW list that GB2312 can encode (simplified-script names not in
# zh_CN's list), and English surnames are one time in five hyphenated (two Faker surnames)
# or one time in five Irish or Italian with an apostrophe (``APOSTROPHE``). The detectors
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
APOSTROPHE = [
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
