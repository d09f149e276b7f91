"""Held-out prose splits J and K: templates in registers A to I lack.

Both were written together, before the detectors were read for them, and in different
domains from each other, so that K (run once, after J's fixes) stays a measure of text
nobody tuned on. J: service-of-process receipts, medical-insurance claims, school
registers, lease filings, work-injury rulings, 小红书 posts, group notices with @names,
ward-round notes, bank statements, 12345 hotline tickets, wedding invitations,
obituaries, award lists, genealogies, traffic-violation notices; in English jury
summonses, obituaries, wedding invitations, EOBs, tenant ledgers, Signed-off-by
trailers, meeting invites, award lists, incident reports, SOAP notes, HOA letters,
voter records, TSV rows. K: itineraries, blood-donation cards, volunteer calls, exam
tickets, pet adoption, notarial deeds, residence permits, lost-and-found and missing-
person notices, donation lists, health checks, driving school, hotel check-in, offers,
hearsay, village notices; in English boarding passes, hotel folios, donor lists,
church bulletins, box scores, issue trackers, affidavits, shut-off notices, subpoenas,
photo captions, Co-authored-by trailers, credits, listings, paystubs, library holds.

Values are drawn as H and I draw them (``prose_templates_hi.py``). Spans follow the
older splits: the value only, a title (先生, 阿姨, Dr.) stays outside. One template in
each list has no name or address (place-like and name-like words only).
"""

from __future__ import annotations

ZH_J = [
    "送达回证\n案号：（2024）京0105民初12345号\n受送达人：{name}\n送达地址：{addr}\n送达人：{name2}",
    "医保报销单 参保人姓名：{name} 医保卡号：1101088812 就诊医院：市一院 报销金额：1280.50元",
    "学籍表\n学生姓名：{name}\n性别：男\n家庭住址：{addr}\n父亲：{name2}  母亲：{name3}",
    "房屋租赁登记备案：出租人{name}将坐落于{addr}的住房出租给承租人{name2}，租期一年。",
    "工伤认定决定书：{name}于2024年6月3日在本单位车间作业时左手受伤，予以认定为工伤。",
    "姐妹们！今天去{addr}那家店打卡了，老板{name}超级nice，强烈推荐～",
    "群公告：@全体成员 明晚七点开会，@{name} 负责订场地，@{name2} 准备PPT。",
    "病程记录 2024-03-12 患者{name}今日诉夜间咳嗽加重，{name2}主任医师查房后指示加用雾化。",
    "交易明细 2024-05-01 转入 5,000.00 对方户名：{name} 摘要：工资",
    "12345热线工单 来电人：{name} 联系地址：{addr} 诉求：小区门口路灯损坏，请尽快维修。",
    "谨定于十月一日为{name}先生与{name2}女士举行婚礼，敬请光临。地址：{addr}",
    "讣告：{name}同志因病医治无效，于2024年2月8日逝世，享年{age}岁。",
    "获奖名单\n一等奖：{name}\n二等奖：{name2}、{name3}",
    "家谱第十八世：{name}，娶{name2}，生二子，迁居{addr}。",
    "【违章提醒】尊敬的{name}车主，您的车辆苏A12345在{addr}路口闯红灯，请及时处理。",
    "优秀员工：{name} {name2} {name3}（排名不分先后）",
    "物业通知：东门本周末封闭施工，请各位业主从南门出入，给您带来不便敬请谅解。",
]
EN_J = [
    "JURY SUMMONS\nTo: {name}\n{addr}\nYou are summoned to appear for jury service. Juror ID 20931",
    "{name}, {age}, of Maple Grove, died on June 2. She is survived by her husband, {name2}.",
    "Together with their families, {name} and {name2} invite you to their wedding at {addr}.",
    "EXPLANATION OF BENEFITS\nMember: {name}  Member ID: XJH884412901\nProvider: Dr. {name2}",
    "Tenant ledger, Unit 3B\n01/01 Rent charge 1,450.00\n01/03 Payment from {name} 1,450.00",
    "Fix null deref in parser\n\nSigned-off-by: {name} <dev@example.org>\nReviewed-by: {name2}",
    "Invitation: Q3 planning @ Wed Oct 9, 2pm\nOrganizer: {name}\nAttendees: {name2}, {name3}",
    "This year's Volunteer of the Year awards go to {name}, {name2} and {name3}.",
    "INCIDENT REPORT 24-01877: Officer {name} responded to {addr}; the complainant is {name2}.",
    "S: {name} reports worsening knee pain x2 weeks. O: BP 132/84. A: OA. P: PT referral.",
    "Dear Homeowner,\nThe fence at {addr} exceeds the permitted height. Please contact {name}.",
    "VOTER REGISTRATION\nName: {name_lf}\nResidence address: {addr}\nPrecinct: 14-B",
    "id\tname\tcity\n1042\t{name}\tSpringfield\n1043\t{name2}\tDayton",
    "Property tax bill 2024. Owner of record: {name}. Property location: {addr}.",
    "Reunion committee: {name} (Class of '94) is collecting RSVPs at 503-555-0148.",
    "Patient: Biscuit (canine). Owner: {name}. Vaccines due: rabies, DHPP.",
    "The Washington Monument and the Lincoln Memorial are closed on Monday.",
]
ZH_K = [
    "电子客票行程单 旅客姓名：{name} 有效身份证件号码：110101199003078515 航班：CA1234",
    "无偿献血证 献血者：{name} 血型：A型 献血量：400毫升 采血地点：{addr}",
    "志愿者招募｜本周六社区义诊，报名请联系{name}（微信同号13700001111）。",
    "准考证 考生姓名：{name} 考点地址：{addr} 第12考场 座位号08",
    "宠物领养协议：送养人{name}，领养人{name2}，领养人承诺不弃养。",
    "公证书 兹证明{name}与{name2}于2024年8月8日在本公证员面前签署了前面的《借款合同》。",
    "居住证申领：申请人{name}，现居住地址{addr}，房东{name2}。",
    "失物招领：今天上午在{addr}捡到钱包一个，失主{name}请速来认领。",
    "寻人启事：{name}，男，{age}岁，3月5日走失，身穿蓝色外套，知情者请联系其家属{name2}。",
    "爱心捐款公示：{name} 500元；{name2} 200元；{name3} 100元。",
    "体检报告 姓名：{name} 体检编号：TJ2024050012 总检医师：{name2} 结论：未见明显异常。",
    "{name}学员您好，您预约的科目二练车时间为周六上午，地点：{addr}。",
    "入住登记 客人姓名：{name} 房号：1208 同住人：{name2} 入住日期：2024-07-01",
    "Offer：{name}您好，恭喜您通过面试，入职地点为{addr}，报到请找HR{name2}。",
    "我妈说{name}阿姨下周要来家里住几天，让我去车站接一下。",
    "村务公示：经村民代表大会评议，{name}、{name2}两户纳入低保，公示期七天。",
    "华山医院和中山公园之间新开了一家书店，欢迎大家来逛。",
]
EN_K = [
    "BOARDING PASS\n{name_lf}\nFlight UA 902  Seat 14C  Gate B7",
    "Guest folio: {name}, Room 1412, 3 nights. Billing address: {addr}",
    "Our deepest thanks to this year's donors: {name}, {name2}, and {name3}.",
    "Sunday bulletin: please keep {name} and her family in your prayers. Ushers: {name2}.",
    "Box score: {name} 18 pts, 7 reb; {name2} 12 pts, 9 ast.",
    "Assignee: {name}\nReporter: {name2}\nPriority: P2\nSummary: login page times out",
    "AFFIDAVIT\nI, {name}, being duly sworn, depose and say that I reside at {addr}.",
    "FINAL NOTICE: service at {addr} will be disconnected on 05/15. Account holder: {name}",
    "SUBPOENA TO TESTIFY\nTo: {name}\nYou are commanded to appear in the Superior Court.",
    "Pictured, left to right: {name}, {name2}, {name3}.",
    "Add retry to uploader\n\nCo-authored-by: {name} <4821+dev@users.noreply.github.com>",
    "Episode 42 was produced by {name} and edited by {name2}.",
    "Listed by {name}, Realtor. Open house Sunday 1-4 at {addr}.",
    "Congratulations to {name}, recipient of the 2025 Hartley Scholarship.",
    "EARNINGS STATEMENT\nEmployee: {name}  Emp ID: 004417\nPay period: 03/01-03/15",
    "Your hold is ready, {name}. Pick it up at the front desk by Friday.",
    "Jackson County and Warren County share a border along the Grand River.",
]
NEGATIVES_JK = [
    "谨定于国庆节期间举行婚礼，敬请光临。",
    "二等奖空缺，三等奖由评委会另行确定。",
    "本月工资已发放至各员工账户，摘要：工资。",
    "违章停车将被处以罚款，请车主文明停车。",
    "病程记录：今日查房，患者一般情况可，继续当前治疗。",
    "失物招领处设在一楼大厅，请失主携带证件认领。",
    "Signed-off-by and Reviewed-by trailers are required for every patch.",
    "Attendees: all staff. Location: main conference room.",
    "The Jury Assembly Room is on the second floor of the Hall of Justice.",
    "Rose Garden, Grant Park and Summit Avenue are on the parade route.",
    "Pictured: the new library on Lincoln Street, opening in May.",
]
TEMPLATES = {"J": (ZH_J, EN_J), "K": (ZH_K, EN_K)}
