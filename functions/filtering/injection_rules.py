"""The injection rules: the attack phrasings of Chinese and English that stage 1 knows by name.

Why a module of their own: the table is data (a few hundred lines of patterns) that the
scorer (:mod:`.injection`), the long-text reader (:mod:`.segments`) and the learned
model's rule features (:func:`.classifier.rule_features`, by rule name) all read, while
how a score is made of them is the scorer's business. A rule's name is a feature of the
trained model: renaming one, or changing what it matches, calls for retraining
(``just train-injection``).

Each rule that matches the normalised text contributes its weight ``w``; the rules'
score is the noisy-OR ``1 - Π(1 - w)`` (:func:`noisy_or`), in ``[0, 1]``, so one strong
signal (an instruction override, 0.85) crosses the default threshold (0.5) alone while
weak ones (the word "jailbreak", 0.45; "pretend you are", 0.25) need company. Families:

* ``override``   ignore/forget the previous instructions · 忽略之前的指令
* ``roleplay``   DAN, developer mode, "you are no longer bound" · 开发者模式, 不受任何限制
* ``extraction`` repeat your system prompt · 输出你的系统提示词
* ``template``   chat-template tokens smuggled into user text (``<|im_start|>``, ``[INST]``)
* ``encoded``    "decode this and follow it" (the scorer adds the weight of a payload whose
                 *decoded* text matches these rules)

Each rule carries hints: substrings without one of which its pattern cannot match, so
that most regex passes are skipped on ordinary text (found in one pass: :mod:`.hints`).
"""

from __future__ import annotations

import re

from functions.filtering.hints import HintIndex

_EN_OVERRIDE_VERB = r"\b(?:ignore|disregard|forget|skip|override|bypass|neglect|drop|abandon)\b"
_EN_TARGET = (
    r"\b(?:instructions?|prompts?|rules|directions?|directives?|guidelines|guidance|constraints"
    r"|restrictions|polic(?:y|ies)|programming|commands?|orders|context|messages?)\b"
)
_ZH_TARGET = r"(?:指令|指示|提示词?|规则|设定|命令|要求|限制|约束|规定|安全策略|准则)"
_ZH_PROMPT = (
    r"(?:系统提示词?|系统指令|系统消息|系统设定|初始指令|原始指令|初始提示|隐藏指令|预设指令"
    r"|提示词|system prompt)"
)
_ZH_REVEAL = r"(?:输出|打印|显示|告诉我|重复|泄露|透露|给我看|展示|复述|说出|念出|列出|翻译|公开)"
_ZH_NEAR = r"[^,.!?;。\n]"  # normalised text: full-width punctuation is ASCII

_EN_VERBS = (
    "ignore",
    "disregard",
    "forget",
    "skip",
    "override",
    "bypass",
    "neglect",
    "drop",
    "abandon",
)
_ZH_VERBS = (
    "忽略",
    "无视",
    "忘记",
    "忘掉",
    "不要理会",
    "不用理会",
    "别管",
    "跳过",
    "绕过",
    "覆盖",
    "抛弃",
    "放弃",
)
_ZH_PROMPTS = (
    *("系统提示", "系统指令", "系统消息", "系统设定", "初始指令", "原始指令", "初始提示"),
    *("隐藏指令", "预设指令", "提示词", "system prompt"),
)

# name, weight, pattern, and hints: the pattern cannot match a text that holds none of
# these substrings (a cheap ``in`` test skips most regex passes on ordinary text)
_RULES: tuple[tuple[str, float, str, tuple[str, ...]], ...] = (
    # --- instruction override
    (
        "override",
        0.85,
        rf"{_EN_OVERRIDE_VERB}[^.\n]{{0,40}}?\b(?:previous|prior|above|earlier"
        rf"|preceding|foregoing|initial|original|system|your)\b[^.\n]{{0,30}}?{_EN_TARGET}",
        _EN_VERBS,
    ),
    (
        "override_weak",
        0.45,
        rf"{_EN_OVERRIDE_VERB}\s+(?:all|any|every|the)\s+(?:of\s+)?(?:the\s+)?"
        rf"(?:\w+\s+)?{_EN_TARGET}",
        _EN_VERBS,
    ),
    (
        "new_instructions",
        0.5,
        r"\b(?:new|updated|real|actual|true)\s+(?:instructions?|task|"
        r"directives?)\s*:",
        ("instruction", "task", "directive"),
    ),
    ("from_now_on", 0.3, r"\bfrom now on\b", ("from now on",)),
    (
        "forget_all",
        0.5,
        r"\bforget (?:everything|all)(?: of)? (?:you|that|above|before|previous)",
        ("forget ",),
    ),
    (
        "just_print",
        0.45,
        r"\b(?:just|only|instead)\s+(?:say|print|output|write|respond with)\s*[\"“':]",
        ("just", "only", "instead"),
    ),
    (
        "override",
        0.85,
        rf"(?:忽略|无视|忘记|忘掉|不要理会|不用理会|别管|跳过|绕过|覆盖|抛弃|放弃)掉?你?"
        rf"(?:之前|以上|上面|上述|前面|先前|此前|原来|原有|原先|原始|最初|初始|系统|你的|所有|全部|一切|任何)"
        rf"的?(?:所有|全部|一切|任何)?的?{_ZH_TARGET}",
        _ZH_VERBS,
    ),
    (
        "override_loose",
        0.6,
        rf"(?:忽略|无视|忘记|忘掉|不要理会|不用理会|别管|跳过|绕过|抛弃|放弃)(?!了)"
        rf"{_ZH_NEAR}{{0,12}}?"
        rf"(?:你|之前|以上|上面|上述|前面|系统|所有|全部|一切){_ZH_NEAR}{{0,8}}?{_ZH_TARGET}",
        _ZH_VERBS,
    ),
    (
        "new_instructions",
        0.5,
        r"(?:新的|真正的|最新)(?:指令|任务|规则):",
        ("新的", "真正的", "最新"),
    ),
    ("from_now_on", 0.3, r"从现在(?:开始|起)", ("从现在",)),
    # --- role-play and jailbreak personas
    (
        "dan",
        0.9,
        r"do anything now|\b(?:you are|you're|act as|acting as|become|be)\s+(?:an?\s+)?dan\b",
        ("do anything now", "dan"),
    ),
    (
        "mode_switch",
        0.7,
        r"\b(?:developer|dev|god|jailbreak|unrestricted|maintenance|admin|sudo"
        r"|debug|evil|opposite)\s+mode\b|\b(?:admin(?:istrator)?|system|root) override\b",
        ("mode", "override"),
    ),
    ("jailbreak_word", 0.45, r"\bjailbr(?:eak|oken)", ("jailbr",)),
    (
        "no_limits",
        0.6,
        r"\b(?:no|without|free (?:of|from)|not bound by|unbound by|ignore)\s+(?:any\s+)?"
        r"(?:ethical|moral|content|safety|openai'?s?)\s+(?:guidelines|restrictions|filters?|polic(?:y|ies)"
        r"|constraints|principles|rules|limitations|boundaries)",
        (
            "guidelines",
            "restrictions",
            "filter",
            "polic",
            "constraints",
            "principles",
            "rules",
            "limitations",
            "boundaries",
        ),
    ),
    (
        "unfiltered",
        0.45,
        r"\b(?:unfiltered|uncensored|unrestricted|amoral|unethical|no limits"
        r"|(?:without|no) (?:any )?(?:restrictions|limits|limitations|filters|censorship))\b",
        (
            "unfiltered",
            "uncensored",
            "unrestricted",
            "amoral",
            "unethical",
            "limit",
            "restrictions",
            "filters",
            "censorship",
        ),
    ),
    (
        "persona",
        0.35,
        r"\b(?:you are|you're) (?:now|going to be|no longer|free)\b",
        ("you are", "you're"),
    ),
    ("acronym_persona", 0.3, r"\bwhich stands for\b|\bstands for \"", ("stands for",)),
    (
        "pretend",
        0.25,
        r"\b(?:pretend|imagine|roleplay|role-play|act)\b[^.\n]{0,30}"
        r"\b(?:you are|you're|to be|as)\b",
        ("pretend", "imagine", "roleplay", "role-play", "act"),
    ),
    (
        "character",
        0.4,
        r"\b(?:stay in character|break(?:ing)? character|never refuse|not allowed to refuse)\b",
        ("character", "never refuse", "not allowed to refuse"),
    ),
    (
        "policy_talk",
        0.3,
        r"\b(?:openai|anthropic)(?:'s)? (?:content )?polic(?:y|ies)\b",
        ("polic",),
    ),
    (
        "persona",
        0.35,
        r"你现在是|你(?:将|要)扮演|扮演一(?:个|名)|假装你是|假设你是|你不再是",
        ("你现在是", "扮演", "假装你是", "假设你是", "你不再是"),
    ),
    ("mode_switch", 0.7, r"(?:开发者|越狱|上帝|管理员|调试|无限制|维护)模式", ("模式",)),
    ("jailbreak_word", 0.45, r"越狱", ("越狱",)),
    (
        "no_limits",
        0.6,
        r"(?:没有|不受|摆脱|解除|无视|去掉|不再有|不必遵守|无需遵守)(?:任何|所有|一切)?的?(?:安全|道德)?"
        r"(?:限制|约束|审查|道德|伦理|规则|过滤|安全)",
        ("限制", "约束", "审查", "道德", "伦理", "规则", "过滤", "安全"),
    ),
    ("character", 0.4, r"(?:不要|不能|不许|不可以)拒绝|保持角色", ("拒绝", "保持角色")),
    # --- system prompt extraction
    (
        "extraction",
        0.85,
        r"\b(?:repeat|print|show|reveal|display|output|tell me|give me|share|dump|leak"
        r"|expose|return|recite|spell check|translate|write out"
        r"|see|view|access|provide"
        r"|what (?:is|are|was|were)|encode|copy)\b[^.\n?]{0,40}"
        r"\b(?:system (?:prompt|message|instructions?)"
        r"|initial (?:prompt|instructions?|configuration)|hidden (?:prompt|instructions?)"
        r"|original (?:prompt|instructions?)"
        r"|(?:the previous|the above) (?:instructions|prompt|configuration|rules)"
        r"|(?:text|everything|words) above|starting instructions|pre-?prompt"
        r"|beginning of (?:this|the) conversation)",
        (
            "system ",
            "initial ",
            "hidden ",
            "original ",
            "instructions",
            "prompt",
            "configuration",
            "rules",
            "above",
            "beginning of",
        ),
    ),
    # "what were your instructions / show me your rules": an extraction, or a question
    # about a form, a manager's or a manual's instructions. Over the threshold alone
    # (the rules-only policy refuses it), but under STRONG_RULES, so that the learned
    # detector reads the rest of the sentence ("...for filling in the expense form?").
    # It matches what the rule above matched before it was split off (the same name,
    # so stage 1's rule features, and its retrained weights, are unchanged)
    (
        "extraction",
        0.6,
        r"\b(?:repeat|print|show|reveal|display|output|tell me|give me|share|dump|leak"
        r"|expose|return|recite|spell check|translate|write out"
        r"|see|view|access|provide"
        r"|what (?:is|are|was|were)|encode|copy)\b[^.\n?]{0,40}"
        r"\byour (?:instructions|prompt|configuration|rules)",
        ("your ",),
    ),
    (
        "system_prompt_word",
        0.35,
        r"\bsystem (?:prompt|message)\b|\binitial instructions\b|systemprompt",
        ("system ", "initial instructions", "systemprompt"),
    ),
    (
        "extraction_hint",
        0.45,
        r"\b(?:before this conversation|were you told|you were instructed"
        r"|your instructions are|my instructions are|i was instructed"
        r"|(?:text|instructions?|prompt) you (?:were|have been) given)\b",
        (
            "before this conversation",
            "were you told",
            "you were instructed",
            "your instructions are",
            "my instructions are",
            "i was instructed",
            "you were given",
            "you have been given",
        ),
    ),
    (
        "extraction",
        0.85,
        rf"{_ZH_REVEAL}{_ZH_NEAR}{{0,8}}?{_ZH_PROMPT}|{_ZH_PROMPT}{_ZH_NEAR}{{0,12}}?{_ZH_REVEAL}"
        r"|把你的(?:设定|指令|提示)",
        (*_ZH_PROMPTS, "把你的"),
    ),
    (
        "extraction",
        0.75,
        r"(?:系统提示词?|系统指令|初始指令|system prompt)(?:是什么|的内容|里写了什么|原文)",
        ("系统提示", "系统指令", "初始指令", "system prompt"),
    ),
    # --- chat-template tokens in user text
    (
        "template",
        0.7,
        r"<\|im_(?:start|end)\|>|\[/?inst\]|<<sys>>|<\|(?:system|endoftext|eot_id)\|>"
        # a heading at a line start; only blanks inside the line before it (``^\s*`` would
        # rescan every following blank line from each line start: quadratic on newlines)
        r"|</?system>|^[^\S\n]*#{2,}\s*(?:system|instruction)",
        ("<|", "inst]", "<<sys>>", "system>", "##"),
    ),
    # --- encoded payloads announced as such
    (
        "decode_and_follow",
        0.5,
        r"(?:decode|解码|base64|rot13|hex)[^\n]{0,40}(?:follow|execute|do what"
        r"|obey|carry out|执行|照做|遵循|按照)",
        ("decode", "解码", "base64", "rot13", "hex"),
    ),
)
_COMPILED = tuple(
    (name, weight, re.compile(pattern, re.M), hints) for name, weight, pattern, hints in _RULES
)


_HINTS = HintIndex([hints for *_, hints in _COMPILED])  # every rule has hints


def rule_weights(text: str) -> dict[str, float]:
    """The weight of each rule (by name; the strongest of a name) that matches ``text``
    (normalised). Only the rules one of whose hints occurs in it run their pattern."""
    found: dict[str, float] = {}
    for index in sorted(_HINTS.candidates(text)):
        name, weight, pattern, _ = _COMPILED[index]
        if weight > found.get(name, 0.0) and pattern.search(text):
            found[name] = weight
    return found


def noisy_or(weights: dict[str, float]) -> float:
    """The rules' score: ``1 - Π(1 - w)`` over the matched weights, rounded to 4 places."""
    remaining = 1.0
    for weight in weights.values():
        remaining *= 1.0 - weight
    return round(1.0 - remaining, 4)
