"""Person names (``PERSON``): Chinese here, English in :mod:`.people_en`.

No model: a spaCy NER pass costs about 19 ms a message, and a segmenter with name
tags (jieba's ``nr``) several times the whole input budget. Instead, a surname (single
or compound, from the Hundred Family Surnames and the census frequency lists) followed
by one or two given-name characters. Almost every surname character also begins
ordinary words (高兴, 王国, 黄金, 方法), so a candidate needs context: a strong word (姓名,
患者, 收件人, 先生, 女士, 医生…) on either side, or a weak one (的, 说, 来电, 和, an
enumeration comma, a field boundary) on both sides and a given-name character common
in names, and it must not be or begin with a listed common word. One-sided evidence
(a verb or time word: 下午林婷打来电话; a sentence's end) counts when every given
character is a common name character. Each kind of evidence is one regex scan in C;
Python looks only at what they match.

The finder returns ``(start, end, rule)`` in normalised offsets.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from functions.filtering.normalise import Normalised

_CJK = "\u4e00-\u9fff"


def _words(text: str) -> list[str]:
    return text.split()


COMPOUND_SURNAMES = _words(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐 钟离 南宫 西门 "
    "独孤 端木 百里 呼延 万俟 澹台 公冶 太史 申屠 东郭 闻人 赫连 拓跋 第五 左丘 谷梁 宗政 濮阳"
)
SURNAMES = (
    "赖洪萧王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏"
    "魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞"
    "左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕"
    "屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧"
    "闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥"
    "南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支"
    "卿国狄平计索宣晋相初门云容敬扈晁芮普阙浦戈伏鹿薄邸雍辜羊乌母裘亓修邰赫杭况宿鲜印逯"
    "隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由"
)
# characters common in given names (a hand-made list, not Faker's)
GIVEN = frozenset(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华玉兰霞平刚桂金梅鹏辉斌宇浩凯健俊帆帅旭宁龙林欢阳"
    "建国峰晨雪琳晶颖玲丹萍红鑫波飞鸿亮新利清云淑珍凤荣博文彬志宏海兵春燕婷倩慧佳欣怡雨萱梓涵"
    "子轩然航思琪诗雅嘉瑶晓小蕾璐露莉菲薇晴悦妍月洁蓉莹琴岚婕媛嫣婉彤馨瑞祥福庆德仁义礼智信忠"
    "孝勤永长立成功业兴盛昌隆宝贵富天星辰光朗晖东南西北中正方安康泰和顺达通远道家庭振毅坚武威"
    "胜卫士民友彩虹霓松柏竹菊荷莲桃杏梨枫桐楠桦森木柳杨江河湖泉溪源深澈纯真善美好良优豪雄壮巧"
    "雷聪灵乐喜笑容颜珠翠琼瑾瑜璇琅琦珊佩环芝芬芸茜茹荔莎菁萌蓓蕊晗曦昕昊旻炜烨煜熙焕炎钰铭锋锐"
    "铮钧锦坤垚培基城均增喆哲恩慈惠忆恒宸宪宣宜宾寒尧崇巍嵩川州希廷彦征徽心怀悟惟懿才扬承捷政"
    "敬斐昆易春昭晋晏景智暖曼朝望杉果柔栋树格楚毓汉池沁沐沛泓泽津洪润淼滢潇澜澄瀚炯烁照熠牧玥"
    "玮珂珏琛瑛璞甜生田男畅皓盈睿知硕祎祺禧秋程穆童竞笛筠素紫绍羽翔翰耀舒艺芊芮苗若茂茗茵萧蔚"
    "蓝蝶衡裕言诚语谦贞贤赛越迪逸遥邦郎鉴钊铄银锡闻雁雯霖青韵颂飘香馥骏高鸣鹤黎默齐桂秀凤霞兰"
    "三四五六花冬想春夏秋菊萱莺鹃凤娥妹姐兰桂珍淑贞红梅艳丽娟萍玲芳敏静燕华荣坤彪亭岩石山水冰梦婧璐蕊欣宁乾元亨运福禄寿喜财德"
)
# two-character words that begin with a surname and read as a name (a candidate that is
# one of these needs a strong context word)
COMMON_WORDS = frozenset(
    _words(
        """
        宁夏 甘肃 海南 江苏 江西 云南 吉林 安徽 湖北 南昌 常州 温州 杭州 宁波 成都 郑州
        兰州 银川 包头 唐山 柳州 桂林 金华 徐州 曲靖 邯郸 沈阳 武汉 南京 苏州 西安 长春
        高兴 王国 张开 黄金 方法 周末 时间 方面 方向 方便 方式 方案 高级 高速 高度 高中
        高考 金融 金额 安全 安排 安装 平安 文化 文件 文明 明天 明白 明年 明显 海关 海洋
        江山 林业 马上 石油 常常 常见 康复 关于 关系 关注 关键 于是 成功 成为 成本 成果
        成立 成绩 程度 程序 和平 和谐 应该 应用 应当 向前 向上 连续 连接 车辆 车站 项目
        宁可 宁愿 尚未 甘心 管理 简单 简直 冷静 全部 全面 全国 全体 宗教 师傅 商品 商业
        商量 沙发 荣誉 封面 谈话 谈判 乐观 原来 原因 原则 满意 满足 伊拉 海外 花园 权利
        强大 强调 丰富 支持 支付 国家 国际 国内 平时 平台 平均 计划 计算 索引 宣传 相关
        相信 初步 门口 云南 容易 来自 都是 普通 鲜花 印象 危险 公司 公开 公里 公园 公布
        元素 信息 信任 展开 展示 幸福 富有 由于 路上 路线 游戏 司机 古代 吉林 简历 景色
        党员 宫殿 费用 席位 卫生 米饭 柏林 应对 武汉 武器 江苏 江西 湖南 湖北 广东 广西
        杨树 柳树 梅花 兰花 金属 钱包 史上 龙头 雷达 熊猫 秦朝 余下 余额 任何 任务 任意
        沈阳 姚明 孔子 向来 汤圆 温度 温暖 施工 牛奶 齐全 易于 乔木 庞大 颜色 庄园 章节
        岳父 包括 包含 尚且 符合 舒服 童年 毕业 单位 单独 单元 季节 曲线 盛大 谷歌 苗条
        蓝色 白色 白天 黑色 红色 黄色 华人 华为 时候 时代 时期 穆斯 农业 农民 司法 卓越
        古老 车主 项链 麦克 景区 冷水 晏子 米兰 宗旨 全新 应急 边界 边境 姬妾 师生 和尚
        商店 沙漠 荣获 巫师 桑拿 丛林 仲裁 明确 池塘 查询 查看 查找 麻烦 迟到 官方 封锁
        谈到 匡正 惠州 荆州 乐意 郁闷 南京 南方 班级 储存 楚国 燕子 劳动 皮肤 楼上 楼下
        盘子 满分 闻到 位置 区域 区别 海南 花费 强烈 屠宰 豆腐 盖子 练习 井水 祖国 巴黎
        丰收 国王 国外 平等 相同 相当 初中 门票 云端 容量 敬礼 来到 来说 都市 普及 鹿角
        邓小 曹操 彭湃 夏天 夏季 秋天 金色 石头 杜绝 叶子 苏州 吕布 丁香 余地 东方 东西
        万一 万元 万分 万物 钱财 严格 严重 武术 戴上 莫名 孔雀 常规 康熙 文章 文字 文学
        牛肉 安静 安心 齐心 易懂 包装 宁静 解决 解释 解放 艾滋 尤其 阳光 时尚 穆罕 农村
        古典 吉他 简介 车间 连忙 项羽 田野 田地 董事 袁术 于今 余生 叶片 程式 魏国 吕后
        任职 姜汤 钟表 谭嗣 陆地 陆续 汪洋 范围 金钱 石家 贾宝 邹城 孟子 熊市 秦国 江湖
        尹喜 段落 雷雨 侯爵 龙虾 史记 陶瓷 黎明 贺卡 顾客 顾问 毛病 毛巾 郝家
        但是 但愿 谢谢 明日 于周 于本 于明 于次 于下 于上
        于近 于昨 于当 于每 于该 于此 于同 于日 于年
        """
    )
)
_STRONG_BEFORE = _words(
    "姓名 名字 患者 病人 病患 收件人 收货人 联系人 户名 客户 用户 员工 "
    "职员 学生 经办人 申请人 投保人 被保险人 持卡人 开户人 签字人 签名 "
    "负责人 法人 代表人 我叫 名叫 叫做 致 亲爱的 尊敬的 家属 委托人 受益人 "
    "乘客 租客 业主 房东 寄件人 发件人 报案人 当事人 嫌疑人 老师 医生 教授 "
    "同事 朋友 被告 原告 被告人 证人 被害人 作者 记者 主持人 选手 队员 球员 "
    "演员 导演 司机 学员 房客 户主 法定代表人 监护人 紧急联系人 经手人 "
    "审核人 批准人 填表人 借款人 出借人 担保人 收款人 付款人 领款人 乘机人 乘车人 "
    "旅客 入住人 预订人 订票人 购票人 住客 游客 访客 来访人 缴款人 开票人 经理人 "
    "房主 屋主 车主 店主 货主 失主 雇主 摊主 船主 物主"
)
# job titles and roles in front of a name (经理黄志明批准…, 护士长吴欣妤已…): as strong as
# a field label, but a common word after them is still rejected (经理高兴地说)
_ROLE_BEFORE = _words(
    "经理 副经理 总经理 客户经理 主任 副主任 总监 主管 董事长 董事 老师 班主任 辅导员 "
    "校长 院长 主任医师 副主任医师 主治医师 医师 住院医师 药师 技师 护士 护士长 护师 "
    "律师 代理律师 法官 审判长 审判员 书记员 检察官 民警 警官 值班民警 辅警 所长 "
    "会计 出纳 柜员 复核员 审批人 面试官 候选人 应聘者 求职者 实习生 新员工 同学 "
    "教练 工程师 技术员 业务员 营业员 专员 助理 秘书 社工 网格员 调解员 "
    "科长 处长 局长 部长 厂长 站长 组长 队长 班长 村长 镇长 书记 主席 理事长 "
    "被保险人 理赔员 核保员 快递员 配送员 保安 技工 工人 职工 干部 党员 村民 居民 "
    "股东 法人代表 收件方 寄件方 经理人 责任人 值班员 讲师 嘉宾 专家 研究员"
)
# role words right after a name (建议孙丽患者…): like _STRONG_AFTER, but the candidate is
# checked as on weak evidence (高血压患者 is no name)
_ROLE_AFTER = _words(
    "患者 病人 病患 家属 本人 夫妇 一家 母子 父子 的身份证 的手机 的电话 的账户 的账号 "
    "的银行卡 的邮箱 的住址 的家庭住址 的病历 的工资 的护照 的社保 的驾驶证 的车牌 的签名 "
    # a child or a relative named by the person (张秀华小朋友的家长, 王磊的母亲)
    "小朋友 宝宝 家长 的家长 的父亲 的母亲 的爸爸 的妈妈 的孩子 的儿子 的女儿 的丈夫 的妻子"
)
_STRONG_AFTER = _words(
    "先生 女士 小姐 老师 医生 大夫 护士 教授 经理 主任 总监 同学 师傅 "
    "阿姨 叔叔 律师 院长 校长 书记 局长 处长 科长 部长 董事长 总经理 博士 "
    "同志 老板 主管 专员 工程师 会计 夫妇 一家"
)
_WEAK_AFTER = _words(
    "的 说 表示 指出 来电 致电 打电话 签字 签名 确认 提交 反馈 告诉 认为 "
    "今天 昨天 明天 于 在 和 与 及 、 ， , 。 ： : ； ; （ ( ） "
    ") 是 已 已经 也 还 都 曾 将 要 就 家 住 同意 发现 称 回答 问 批准 审批 签署 "
    "担保 接到 收到 完成 入职 离职 办理 申请 报案 报警 投诉 承诺 拒绝 核实 填写 "
    "领取 支付 转账 借款 还款 主持 主讲 主刀 接诊 出院 入院 就诊 复查 陈述 证实"
)
# verbs and time words: evidence on one side only when the given name looks like one
_HALF_AFTER = _words(
    "打来 发来 来了 去了 到了 回复 提到 提出 负责 参加 出席 介绍 没有 不 很 刚 又 "
    "正在 给 让 被 把 向 对 看 想 买 做 写 送 拿 要求 希望 觉得 知道 请 打 今年 "
    "同学 同志"
)
_HALF_BEFORE = _words(
    "今天 昨天 明天 上午 下午 晚上 早上 中午 当时 后来 然后 但是 因为 所以 如果 "
    "告诉 通知 联系 感谢 谢谢 恭喜 祝贺 邀请 委托 拜访 看望 采访 交给 转给 发给 "
    "寄给 通知 我是 他是 她是 找 和 与 及 、 ， , 。 ： : ； ; （ ( \n 认为 提醒 表扬 "
    "批评 推荐 任命 聘请 安排 派 提名 转告 问候 转账给 汇款给 付给 借给 还给 打给 "
    "建议 嘱 嘱咐 授权 指派 接待 陪同 协助 帮助 经 把 将 被"
)
_WEAK_BEFORE = _words(
    "和 与 及 、 ， , 。 ： : ； ; （ ( 由 给 向 让 请 找 问 把 被 叫 是 跟 同 对 的"
)
_PLACE_KEYS = frozenset("省市区县旗镇乡村路街巷弄道")


def _alt(words: list[str], lead: bool = False) -> str:
    """An alternation of ``words``. Inside a pattern, behind a one-character check that
    fails fast (sre tries the branches one by one); at its start (``lead``) bare, where
    sre derives the set of first characters itself and skips to them in C."""
    branches = "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
    if lead:
        return branches
    firsts = re.escape("".join(sorted({w[0] for w in words})))
    return f"(?=[{firsts}])(?:{branches})"


# Three scans in C, one per kind of evidence; Python only looks at their matches. A
# given name is one or two CJK characters, the second not the start of a context word
# (王伟说的: 王伟, not 王伟说).
# a character class first (searched at C speed), then the second character of a compound
# surname (欧阳) when the first is its start; _keep drops a compound's start alone (上)
_FIRSTS = "".join(sorted(set(SURNAMES) | {c[0] for c in COMPOUND_SURNAMES}))
_COMPOUND_HEAD = "".join(sorted({c[0] for c in COMPOUND_SURNAMES}))
_COMPOUND_TAIL = "".join(sorted({c[1] for c in COMPOUND_SURNAMES}))
_SURNAME = rf"[{_FIRSTS}](?:(?<=[{_COMPOUND_HEAD}])[{_COMPOUND_TAIL}])?"
# (a one-character verb may end a given name: 刘晓刚, so only the longer ones count)
_AFTER = _alt(_STRONG_AFTER + _WEAK_AFTER + _ROLE_AFTER + [w for w in _HALF_AFTER if len(w) > 1])
_GIVEN_NAME = rf"[{_CJK}](?:(?!{_AFTER})[{_CJK}])?"
_BY_STRONG_BEFORE = rf"(?:{_alt(_STRONG_BEFORE, lead=True)})[:：\s]{{0,3}}({_SURNAME}{_GIVEN_NAME})"
_BY_ROLE_BEFORE = rf"(?:{_alt(_ROLE_BEFORE, lead=True)})[:：\s]{{0,2}}({_SURNAME}{_GIVEN_NAME})"
_BY_ROLE_AFTER = rf"({_SURNAME}{_GIVEN_NAME})(?:{_alt(_ROLE_AFTER)})"
_BEFORE_REACH = max(map(len, _STRONG_BEFORE + _ROLE_BEFORE)) + 3
_BY_STRONG_AFTER = rf"({_SURNAME}[{_CJK}]{{1,2}}?)(?:{_alt(_STRONG_AFTER)})"
_HALF_REACH = max(map(len, _HALF_BEFORE))
_NAME_CHAR = f"[{''.join(sorted(GIVEN))}]"
_LIKELY_NAME = rf"{_SURNAME}{_NAME_CHAR}(?:(?!{_AFTER}){_NAME_CHAR})?"
_BY_HALF_BEFORE = rf"(?:{_alt(_HALF_BEFORE, lead=True)})\s?({_LIKELY_NAME})"
# half evidence on both sides (感谢张宥辰对…): a given name needs one common name character
_BY_HALF_BOTH = (
    rf"(?:{_alt(_HALF_BEFORE, lead=True)})\s?({_SURNAME}{_GIVEN_NAME})"
    rf"(?={_alt(_HALF_AFTER + _WEAK_AFTER)})"
)
# every pattern that names no word before the name starts with the surname class, so sre
# skips to surname characters in C; what the character before must be is checked in
# Python (a leading lookbehind would be tried at every position)
_BY_HALF_AFTER = rf"({_LIKELY_NAME})(?:{_alt(_HALF_AFTER + _WEAK_AFTER)})"
# two-character words made of name characters (a given name rarely is one of these)
_COMMON_GIVEN = frozenset(
    _words(
        "美国 中国 中文 中心 国家 文化 语言 世界 英国 德国 法国 明星 新闻 文明 安全 "
        "平安 和平 国际 中华 华人 东方 西方 南方 北方 长安 永远 文学 人民 "
        "喜欢 希望 知道 成功 威望 东西 中心 信息 发展 国内 国外 家庭 美好 通知 欢迎 "
        "安全 快乐 成长 生活 文明 和谐 明天 今天 春天 秋天 天下 天然 自然"
    )
)
# a likely name that ends a sentence or a field (产权人张凤兰。)
_BY_SENTENCE_END = rf"({_LIKELY_NAME})(?=[。，,.；;！!？?\n）)]|\Z)"
_WEAK_BEFORE_CHARS = frozenset("".join(_WEAK_BEFORE))
# the surname at a field's start: checked right after its first character, by two
# lookbehinds of fixed width (the pattern still starts with the class, found in C)
_FIELD_START = rf"(?:(?<=[{re.escape(''.join(sorted(_WEAK_BEFORE_CHARS)))}].)|(?<![{_CJK}a-z].))"
_SURNAME_AT_FIELD = rf"[{_FIRSTS}]{_FIELD_START}(?:(?<=[{_COMPOUND_HEAD}])[{_COMPOUND_TAIL}])?"
# a sum of money after a name (转账给赵春美五千元)
_AMOUNT = "[一二两三四五六七八九十][十百千万]*[元块万]|[一二两三四五六七八九][十百千万]"
_BY_WEAK = (
    rf"({_SURNAME_AT_FIELD}{_GIVEN_NAME})(?=(?:{_alt(_WEAK_AFTER)})|{_AMOUNT}|[^{_CJK}a-z]|\Z)"
)
_BY_HALF_AFTER_FIELD = (
    rf"({_SURNAME_AT_FIELD}{_NAME_CHAR}(?:(?!{_AFTER}){_NAME_CHAR})?)"
    rf"(?:{_alt(_HALF_AFTER + _WEAK_AFTER)})"
)
# a field's start and a verb after it (徐品妤向派出所报案): both sides, one name character
_LONG_HALF_AFTER = _alt([w for w in _HALF_AFTER if len(w) > 1])
_BY_HALF_AFTER_AT_FIELD = (
    rf"({_SURNAME_AT_FIELD}{_GIVEN_NAME})(?:{_LONG_HALF_AFTER}|[向对给把被让])"
)


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """The patterns above are compiled on first use: their surname and name-character
    classes take sre a tenth of a second, at every start of a gateway whose first texts
    may hold no Chinese (:func:`zh_names` runs only on text with CJK characters)."""
    return re.compile(pattern)


def zh_names(norm: Normalised, pos: int) -> list[tuple[int, int, str]]:
    """Chinese names in ``norm`` starting at or after ``pos`` (normalised offsets)."""
    text = norm.text
    found: dict[tuple[int, int], str] = {}
    # a context word may sit before ``pos`` (a stream's released text)
    _scan(_compiled(_BY_STRONG_BEFORE), text, pos, _BEFORE_REACH, found, strong=True)
    _scan(_compiled(_BY_STRONG_AFTER), text, pos, 0, found, strong=True, titled=True)
    _scan(_compiled(_BY_ROLE_BEFORE), text, pos, _BEFORE_REACH, found, strong=True)
    _scan(_compiled(_BY_ROLE_AFTER), text, pos, 0, found)
    _scan(_compiled(_BY_WEAK), text, pos, 0, found)
    _scan(_compiled(_BY_HALF_BEFORE), text, pos, _HALF_REACH, found, strict=True)
    _scan(_compiled(_BY_HALF_AFTER_FIELD), text, pos, 0, found, strict=True)
    _scan(_compiled(_BY_HALF_BOTH), text, pos, _HALF_REACH, found)
    _scan(_compiled(_BY_HALF_AFTER_AT_FIELD), text, pos, 0, found)
    # a three-character likely name before a verb or particle, after any word (嘉宾涂欣将)
    _scan(_compiled(_BY_HALF_AFTER), text, pos, 0, found, strict=True, three=True)
    for start, end in _sentence_ends(text, pos):
        _keep(found, text, start, end, False, False, True)
    return [(start, end, rule) for (start, end), rule in sorted(found.items())]


def _sentence_ends(text: str, pos: int) -> list[tuple[int, int]]:
    """Three-character likely names that end a sentence or a field, whose given name
    is not itself a common word (非常美国。: 常美国 is not a name)."""
    spans = []
    at = pos
    while (m := _compiled(_BY_SENTENCE_END).search(text, at)) is not None:
        start, end = m.span(1)
        if text[start + 1 : end] not in _COMMON_GIVEN:
            spans.append((start, end))
        at = m.start() + 1
    return spans


def _scan(
    pattern: re.Pattern[str],
    text: str,
    pos: int,
    reach: int,
    found: dict[tuple[int, int], str],
    *,
    strong: bool = False,
    titled: bool = False,
    strict: bool = False,
    three: bool = False,
) -> None:
    """Candidates of one pattern; after a rejected one the search goes on from its next
    character (关于徐斌同学: 于徐斌 is rejected, 徐斌 is a name)."""
    at = max(0, pos - reach)
    while (m := pattern.search(text, at)) is not None:
        start, end = m.span(1)
        ok = start >= pos and (not three or end - start == 3)
        if ok and _keep(found, text, start, end, strong, titled, strict):
            at = m.end()
        else:
            at = m.start() + 1


def _keep(
    found: dict[tuple[int, int], str],
    text: str,
    start: int,
    end: int,
    strong: bool,
    titled: bool,
    strict: bool,
) -> bool:
    """Record ``text[start:end]`` unless it is a common word, a place's start, or (on
    weak evidence) a given name of characters rare in names."""
    if end - start == 3 and text[end - 1] in _PARTICLES:
        end -= 1  # 网格员张娜了解: no given name ends in a particle
    if text[end : end + 1] in _PLACE_KEYS:
        return False
    word = text[start:end]
    if word[0] not in _SINGLE and word[:2] not in _COMPOUND:
        return False
    given = word[2:] if word[:2] in _COMPOUND else word[1:]
    # 国际报告, 时间名称: the surname and the first given character are a common word; a
    # title after it (项目部经理) keeps it only when every given character is a name's
    compound = _compound_name(word, given, strong)
    named = all(c in GIVEN for c in given)
    if not compound and (word in COMMON_WORDS or _common_start(word)) and not (titled and named):
        return False
    if not strong and not compound and _in_a_word(text, start, word):
        return False
    if _FUNCTION_WORD.match(text, max(0, start - 1)) and start > 0:
        return False  # 由于, 同时: the "surname" ends a function word
    if _PARTICLES.intersection(given):
        return False  # 满意的, 门口: no given name holds a particle
    if not titled and given in _COMMON_GIVEN:
        return False  # 方喜欢, 国语言: the "given name" is a common word
    if given in _CONTEXT_WORDS and (len(given) > 1 or given not in GIVEN):
        return False  # 医生和护士, 老师常说, 班主任通知: the "given name" is a context word
    # 收件人：王雷\n; 护士长李品妤已…, 会计高雷负责…: a strong word before, a weak one after
    field = strong and (_boundary_after(text, end) or _WEAK_AFTER_AT.match(text, end) is not None)
    if not titled and not field and not any(c in GIVEN for c in given):
        return False
    if strict and not all(c in GIVEN for c in given):
        return False
    found.setdefault((start, end), "zh_name")
    return True


_CONTEXT_WORDS = frozenset(
    _STRONG_BEFORE + _ROLE_BEFORE + _STRONG_AFTER + _ROLE_AFTER + _WEAK_AFTER + _HALF_AFTER
) | frozenset(_HALF_BEFORE + _WEAK_BEFORE)
_WEAK_AFTER_AT = re.compile(_alt(_WEAK_AFTER + _HALF_AFTER))


@cache
def common_words() -> frozenset[str]:
    """Frequent words that begin or end with a surname character (``data/common_words_zh.txt``,
    from jieba's dictionary: see ``infra/training/make_common_words_zh.py``)."""
    path = resources.files("functions.filtering") / "data" / "common_words_zh.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(x for x in lines if x and not x.startswith("#"))


def _in_a_word(text: str, start: int, word: str) -> bool:
    """On weak evidence: the candidate is a frequent word or begins with one (居然, 温馨,
    房间小), or its surname ends one with the character before it (非常好, 过程中)."""
    words = common_words()
    if word in words or word[:2] in words:
        return True
    if text[max(0, start - 8) : start].endswith(_CONTEXT_ENDS):
        return False  # 昨天马杰, 产权人马秀兰: a word ends before it (天马, 人马 are words too)
    return text[max(0, start - 1) : start + 1] in words


_PARTICLES = frozenset("的了吗呢吧啊么着过们")
_CONTEXT_ENDS = tuple(_CONTEXT_WORDS) + tuple("人者员生师长")


def _compound_name(word: str, given: str, strong: bool) -> bool:
    """A compound surname with a given name (东方秀珠, 司马品睿): 东方 and 司马 are words
    too, so the common-word checks would drop every such name; on weak evidence the
    given name must be two characters common in names."""
    if word[:2] not in _COMPOUND or not given:
        return False
    return strong or (len(given) == 2 and all(c in GIVEN for c in given))


def _common_start(word: str) -> bool:
    """国际报, 时间名: a common word and one more character (黄金凤 is lost with them)."""
    return word[:2] in COMMON_WORDS


def _boundary_after(text: str, at: int) -> bool:
    """The end of the text, or a character that is neither CJK nor a letter."""
    return at >= len(text) or not ("\u4e00" <= text[at] <= "\u9fff" or text[at].isalpha())


_COMPOUND = frozenset(COMPOUND_SURNAMES)
_SINGLE = frozenset(SURNAMES)
_FUNCTION_WORD = re.compile(
    "[由对关至等属基鉴终免][于]|[同当及这那有按临准随届暂平][时]|[走面方转偏导倾趋指朝一][向]"
)
