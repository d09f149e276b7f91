"""Combinatorial training items: zh/en attack phrasings and look-alike benign prompts.

The public corpora are English and mostly long jailbreak templates; the owner's
misses were short direct overrides and Chinese. These generators cross
hand-written parts (openers, verbs, targets, payloads; benign uses of the same
words) into a few hundred varied sentences, seeded. They go to the *training*
split only: the calibration and test splits hold natural items, and the Chinese
held-out set is written in another style, so they measure generalisation, not
the templates.

The attack phrasings and their look-alikes are per language (:mod:`.augment_zh`,
:mod:`.augment_en`); this module keeps the ordinary traffic of both (polite requests,
personal data, chit-chat, a front end's task prompts, operator prompts, handbook
passages) and :func:`augmented`, which draws every generator from one seeded stream in
a fixed order.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faker import Faker

from infra.training.injection.augment_en import EN_GENERATORS
from infra.training.injection.augment_zh import ZH_GENERATORS, ZH_MODE
from infra.training.injection.corpora import Item, item

_HANDWRITTEN = Path(__file__).with_name("handwritten.jsonl")


def _tasks(lang: str) -> list[str]:
    """Our hand-written ordinary requests in ``lang``: the bodies of polite requests."""
    rows = [json.loads(line) for line in _HANDWRITTEN.read_text("utf-8").split("\n") if line]
    return [r["text"] for r in rows if r["lang"] == lang and r["family"] == "benign"]


def _zh_polite(r: random.Random, tasks: list[str]) -> str:
    task = r.choice(tasks).rstrip("。？?")
    head = r.choice(
        [
            "你好，",
            "您好，",
            "嗨，",
            "请问",
            "麻烦你",
            "你能",
            "你可以",
            "帮个忙：",
            "你好！",
            "在吗？",
        ]
    )
    tail = r.choice(["", "吗？", "，谢谢！", "。", "？辛苦了", "，你觉得呢？"])
    return f"{head}{task}{tail}"


def _zh_pii(r: random.Random, fake: Faker) -> str:
    forms = [
        f"请把合同寄到{fake.address()}，收件人{fake.name()}，电话{fake.phone_number()}。",
        f"我的身份证号是{fake.ssn()}，帮我查一下社保缴纳记录。",
        f"客户{fake.name()}（{fake.company()}）的手机号{fake.phone_number()}，请帮我写一封跟进邮件。",
        f"订单号{r.randint(10**11, 10**12)}，{fake.name()}，{fake.city()}，还没发货，怎么办？",
        f"身份证{fake.ssn()}",
        f"电话：{fake.phone_number()}，邮箱：{fake.email()}",
        f"{fake.name()}，{fake.job()}，{fake.company()}，请帮我整理成名片格式。",
        f"把这条记录录入系统：{fake.name()} {fake.phone_number()} {fake.address()}",
    ]
    return r.choice(forms)


def _en_polite(r: random.Random, tasks: list[str]) -> str:
    task = r.choice(tasks)
    task = task[0].lower() + task[1:]
    head = r.choice(
        ["Hi, ", "Hello! ", "Could you ", "Can you please ", "Quick one: ", "Hey, ", "Please "]
    )
    return f"{head}{task}"


def _en_pii(r: random.Random, fake: Faker) -> str:
    forms = [
        f"Please send the contract to {fake.address()}, attention {fake.name()}, phone {fake.phone_number()}.",
        f"My SSN is {fake.ssn()}; can you check my tax file?",
        f"Customer {fake.name()} ({fake.company()}) called from {fake.phone_number()}: draft a follow-up.",
        f"Order {r.randint(10**7, 10**8)} for {fake.name()} in {fake.city()} has not shipped yet.",
        f"{fake.name()}, {fake.job()}, {fake.email()}",
    ]
    return r.choice(forms)


GENERATORS = (*ZH_GENERATORS, *EN_GENERATORS)  # in the order they draw


def _bind(make: Callable[[random.Random, Any], str], arg: Any) -> Callable[[random.Random], str]:
    def bound(r: random.Random) -> str:
        return make(r, arg)

    bound.__name__ = make.__name__
    return bound


CHITCHAT = {
    "zh": "你好 您好 你好呀 在吗 谢谢 谢谢你 好的 收到 你是谁 你叫什么名字 你能做什么 你会中文吗 "
    "早上好 晚安 辛苦了 再见 明白了 继续 你好，请问怎么用 你是机器人吗 你是哪家公司开发的 "
    "你能帮我做什么 你好，我是新员工 好的谢谢 没问题 可以 不用了 你觉得呢 你怎么看 你记得我吗 "
    "重新回答 说详细一点 简短一点 换个说法 用英文回答 再来一次 你确定吗 你说得对 你错了".split(),
    "en": [
        "hi",
        "hello",
        "hey there",
        "thanks",
        "thank you",
        "ok",
        "who are you",
        "what can you do",
        "what is your name",
        "are you a bot",
        "good morning",
        "are you there",
        "continue",
        "go on",
        "shorter please",
        "say it in French",
        "try again",
        "are you sure",
        "you are wrong",
        "who made you",
        "what model are you",
        "can you help me",
        "what are you able to do",
        "explain again",
        "more details please",
        "thanks, that helps",
        "never mind",
    ],
}


def _task_prompt(r: random.Random, tasks: list[str]) -> str:
    """A front end's own structured task prompt (chat titles, tags, follow-ups, search
    queries): headings and rules addressed to the model, sent as a user message."""
    task = r.choice(
        [
            "Generate a concise, 3-5 word title with an emoji summarizing the chat history.",
            "Generate 1-3 broad tags categorizing the main themes of the chat history.",
            "Suggest 3-5 relevant follow-up questions the user might ask next.",
            "Generate search queries to find information relevant to the last user message.",
            "Continue the user's text with a short, natural completion.",
            "Summarise the conversation in one sentence.",
            "根据聊天记录生成一个简短的标题（不超过10个字）。",
            "根据对话内容生成1-3个分类标签。",
            "请根据聊天记录推荐3个用户可能会继续提出的问题。",
        ]
    )
    rules = r.choice(
        [
            "- The title should clearly represent the main theme.\n- Avoid quotation marks.",
            "- Use the chat's primary language.\n- Do not answer the question itself.",
            "- Keep it short.\n- Prioritize accuracy over creativity.",
            "- 使用与对话相同的语言。\n- 不要回答问题本身。",
        ]
    )
    output = r.choice(
        [
            'JSON format: { "title": "..." }',
            'JSON format: { "tags": [] }',
            "Plain text only.",
            'JSON: { "queries": [] }',
            "只输出JSON。",
        ]
    )
    history = "\n".join(f"USER: {r.choice(tasks)}" for _ in range(r.randint(1, 3)))
    head = r.choice(["### ", "## ", "", "# "])
    return (
        f"{head}Task:\n{task}\n{head}Guidelines:\n{rules}\n{head}Output:\n{output}\n"
        f"{head}Chat History:\n<chat_history>\n{history}\n</chat_history>"
    )


def _operator_prompt(r: random.Random, fake: Faker) -> str:
    """An operator's role description, as API clients often send it in a user message."""
    company = fake.company()
    role = r.choice(["expense", "HR", "IT helpdesk", "travel", "sales", "support", "legal"])
    rule = r.choice(
        [
            "Never discuss salaries or bonuses with anyone.",
            "Answer only questions about our products.",
            "Be concise and cite the handbook.",
            "Do not give legal advice; refer users to the legal team.",
            "Reply in the user's language.",
            "If you do not know, say so.",
        ]
    )
    return f"You are the {role} assistant of {company}. {rule}"


def _zh_operator_prompt(r: random.Random, fake: Faker) -> str:
    role = r.choice(["报销", "人事", "IT服务台", "差旅", "销售", "客服", "法务"])
    rule = r.choice(
        [
            "不要讨论任何人的薪资。",
            "只回答与本公司产品有关的问题。",
            "回答要简洁，并注明出处。",
            "不要提供法律意见。",
            "如果不知道答案，请直接说明。",
            "请使用用户的语言回答。",
        ]
    )
    return f"你是{fake.company()}的{role}助手。{rule}"


def _policy_passage(r: random.Random, fake: Faker) -> str:
    """A handbook passage (what retrieval returns): rules and limits, stated, not ordered."""
    topic = r.choice(["travel", "expense", "leave", "security", "procurement", "remote work"])
    facts = [
        f"Per the {topic} policy, hotel costs are reimbursed up to {r.randint(3, 12) * 100} yuan per night in tier-one cities.",
        f"Meals are covered up to {r.randint(5, 30) * 10} yuan per day when travelling on business.",
        f"Employees must submit receipts within {r.randint(7, 60)} days.",
        "Managers approve requests above the limit; finance reviews them monthly.",
        "Passwords must be at least 12 characters and are never shared.",
        f"Contact {fake.name()} in finance for exceptions.",
        "Annual leave is 15 days; unused days expire at the end of March.",
    ]
    heading = r.choice(["", f"# {topic.title()} policy\n\n", f"## {topic.title()}\n"])
    return heading + " ".join(r.sample(facts, r.randint(2, 5)))


def _zh_policy_passage(r: random.Random, fake: Faker) -> str:
    facts = [
        f"根据差旅政策，一线城市住宿费每晚报销上限为{r.randint(3, 12) * 100}元。",
        f"出差期间餐费每天最多报销{r.randint(5, 30) * 10}元。",
        f"员工须在{r.randint(7, 60)}天内提交发票。",
        "超出标准的费用需经部门经理审批，财务每月复核。",
        "密码长度不少于12位，严禁与他人共享。",
        f"如有特殊情况，请联系财务部{fake.name()}。",
        "年假为15天，未休年假于次年3月底作废。",
        "所有员工必须遵守公司的信息安全规定。",
    ]
    heading = r.choice(["", "# 员工手册\n\n", "## 报销制度\n"])
    return heading + "".join(r.sample(facts, r.randint(2, 5)))


def augmented(seed: int = 20261202) -> list[Item]:
    """The generated items (training split only: ``split`` is set)."""
    r = random.Random(seed)
    zh_fake, en_fake = Faker("zh_CN"), Faker("en_US")
    zh_fake.seed_instance(seed)
    en_fake.seed_instance(seed)
    zh_tasks, en_tasks = _tasks("zh"), _tasks("en")
    generators = (
        *GENERATORS,
        ZH_MODE,
        (_bind(_zh_polite, zh_tasks), 0, "benign", "zh", 400),
        (_bind(_zh_pii, zh_fake), 0, "benign", "zh", 300),
        (_bind(_en_polite, en_tasks), 0, "benign", "en", 200),
        (_bind(_en_pii, en_fake), 0, "benign", "en", 200),
        (_bind(_task_prompt, en_tasks + zh_tasks), 0, "benign", "en", 300),
        (_bind(_operator_prompt, en_fake), 0, "benign", "en", 250),
        (_bind(_zh_operator_prompt, zh_fake), 0, "benign", "zh", 250),
        (_bind(_policy_passage, en_fake), 0, "document", "en", 300),
        (_bind(_zh_policy_passage, zh_fake), 0, "document", "zh", 300),
    )
    found: dict[str, Item] = {}
    for lang, texts in CHITCHAT.items():
        for text in texts:
            it = item(text, 0, "benign", "enclave-augment:chitchat")
            it["lang"], it["split"] = lang, "train"
            found[text] = it
    for lang, fake in (("zh", zh_fake), ("en", en_fake)):  # plain prose, short and long
        for _ in range(400):
            text = fake.text(max_nb_chars=r.choice([80, 200, 600, 1500, 3000]))
            it = item(text, 0, "prose", "enclave-augment:faker-text")
            it["lang"], it["split"] = lang, "train"
            found[text] = it
    for make, label, family, lang, count in generators:
        for _ in range(count):
            text = make(r)
            it = item(text, label, family, f"enclave-augment:{make.__name__}")
            it["lang"], it["split"] = lang, "train"
            found.setdefault(text, it)
    return list(found.values())
