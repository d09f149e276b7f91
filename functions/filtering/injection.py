"""Prompt-injection and jailbreak detection for Chinese and English: a scored heuristic.

Each rule that matches the normalised text contributes its weight ``w``; the score
is the noisy-OR ``1 - Π(1 - w)``, in ``[0, 1]``, so one strong signal (an
instruction override, 0.85) crosses the default threshold (0.5) alone while weak
ones (the word "jailbreak", 0.45; "pretend you are", 0.25) need company. Families:

* ``override``   ignore/forget the previous instructions · 忽略之前的指令
* ``roleplay``   DAN, developer mode, "you are no longer bound" · 开发者模式, 不受任何限制
* ``extraction`` repeat your system prompt · 输出你的系统提示词
* ``template``   chat-template tokens smuggled into user text (``<|im_start|>``, ``[INST]``)
* ``encoded``    a base64 or hex blob (or rot13 text) whose *decoded* text scores as
                 an injection, or "decode this and follow it"

The rules catch the common, reusable attack phrasings cheaply (a few regex
passes). :func:`score_injection` adds the learned model of :mod:`.classifier`
(hashed n-grams, with each matched rule as a feature) and returns its calibrated
probability (stage 1): the rule score alone is :func:`score_rules`. A text over 300
characters (a pasted or retrieved document) is read by sentence-aligned
segments of ~96 bytes (:mod:`.segments`, :func:`read_segments`): one instruction inside
a long benign text is scored about as it would be alone, and the suspicious words of
unrelated sentences do not add up (a strong rule matched anywhere still floors the
score). A text whose stage-1 score falls in the grey band of :mod:`.semantic`
:func:`escalates` to stage 2, an e5 head (a long text's top segment), and
:func:`combine_semantic` gives the final score (the engine wires it:
``ContentFilter.injection``). Rules of :data:`STRONG_RULES` weight decide alone and
floor the score. Held-out TPR and FPR per language and family are in
``tests/functions/filtering/test_injection_quality.py``.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import math
import re
from dataclasses import dataclass

import numpy as np

from functions.filtering.classifier import InjectionModel, prepare, rule_features
from functions.filtering.normalise import normalise
from functions.filtering.segments import segment_size, segments
from functions.filtering.semantic import SHORT, SemanticHead

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
_BASE64 = re.compile(r"[A-Za-z0-9+/]{20,}={0,2}|[A-Za-z0-9_\-]{24,}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2}){12,}|(?:\\x[0-9a-fA-F]{2}){8,}")
_ROT13_HINT = re.compile(r"rot-?13|caesar|凯撒")


@dataclass(frozen=True, slots=True)
class InjectionScore:
    score: float
    reasons: tuple[str, ...]


def _rule_weights(text: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for name, weight, pattern, hints in _COMPILED:
        if weight <= found.get(name, 0.0) or not any(hint in text for hint in hints):
            continue
        if pattern.search(text):
            found[name] = weight
    return found


def _combine(weights: dict[str, float]) -> float:
    remaining = 1.0
    for weight in weights.values():
        remaining *= 1.0 - weight
    return round(1.0 - remaining, 4)


def _decoded(blob: str) -> str | None:
    """``blob`` decoded as base64 or hex, if that gives mostly printable text."""
    try:
        if blob.startswith("\\x"):
            raw = bytes.fromhex(blob.replace("\\x", ""))
        elif re.fullmatch(r"[0-9a-fA-F]+", blob):
            raw = bytes.fromhex(blob)
        else:
            raw = base64.b64decode(
                blob.replace("-", "+").replace("_", "/") + "=" * (-len(blob) % 4)
            )
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    printable = sum(c.isprintable() or c.isspace() for c in text)
    return text if text and printable / len(text) > 0.9 else None


def _hidden_texts(original: str, folded: str) -> list[str]:
    """The normalised texts hidden in base64 or hex blobs, or in rot13 when it is named."""
    found = []
    for pattern in (_BASE64, _HEX):
        for match in pattern.finditer(original):
            decoded = _decoded(match.group())
            if decoded is not None:
                found.append(normalise(decoded).text)
    if _ROT13_HINT.search(folded):
        found.append(codecs.encode(folded, "rot13"))
    return found


def _encoded_weight(hidden: list[str]) -> float:
    """The rule score of the strongest hidden payload (0 if none)."""
    return max((_combine(_rule_weights(text)) for text in hidden), default=0.0)


def score_rules(text: str, folded: str | None = None) -> InjectionScore:
    """The rules' noisy-OR score of ``text`` (``folded``: its normalised form, if made)."""
    folded = normalise(text).text if folded is None else folded
    return _score_rules(folded, _hidden_texts(text, folded))


def _score_rules(folded: str, hidden: list[str]) -> InjectionScore:
    weights = _rule_weights(folded)
    encoded = _encoded_weight(hidden)
    if encoded >= 0.4:
        weights["encoded"] = max(0.9, encoded)
    return InjectionScore(_combine(weights), tuple(sorted(weights)))


def signals(
    text: str, folded: str | None = None, model: InjectionModel | None = None
) -> tuple[InjectionScore, float]:
    """The rules' score and the learned model's logit for ``text``, before calibration.

    The model reads the text (in half-overlapping windows of
    :data:`~.classifier.WINDOW` characters, as it was trained) and every payload decoded
    from it (base64, hex, rot13), keeping the highest logit.
    """
    rules, logit, _ = _signals(text, folded, model, segmented=False)
    return rules, logit


# A text longer than LONG characters (a pasted or retrieved document) is read
# segment by segment (:mod:`.segments`): runs of whole sentences of about SEGMENT_BYTES
# of UTF-8, each scored with the rules that match it, and the highest logit kept, less
# DOCUMENT_OFFSET (the highest of many segments is biased upwards: more chances at a false
# alarm). It is read whole too (windows of 512 characters, as before, but without the
# rules' features), less WHOLE_OFFSET, and the higher reading stands: a long jailbreak is
# suspicious all through, not in one sentence (read by segments alone, 3% of the
# calibration split's long attacks were missed; with the whole reading, as many as
# before). All were chosen on the calibration split only: documents glued from its
# items, and its long texts (``infra/training/injection/documents.py``).
SEGMENT_BYTES = 96
DOCUMENT_OFFSET = 1.0
WHOLE_OFFSET = 2.0
# characters from which a text is read by segments too: about three English sentences or
# ten Chinese ones. Over one window (512) only, a third of the Chinese tuning documents
# (reviews glued together, under 512 characters, a 20-character attack inside) were still
# read as one diluted window; from 300, no verdict on the calibration split's natural texts
# changed (from 256, one English attack was lost); an ordinary 200-character message is
# read as before, at the same cost
LONG = 300


def is_long(folded: str) -> bool:
    """Whether stage 1 reads ``folded`` (normalised text) by segments too: it is longer
    than :data:`LONG` characters."""
    return len(folded) > LONG and len(prepare(folded)) > LONG


def read_segments(
    text: str,
    model: InjectionModel,
    budget: int = SEGMENT_BYTES,
    offset: float = DOCUMENT_OFFSET,
    ruled: bool = True,
) -> tuple[float, str]:
    """The highest stage-1 logit over the segments of ``text`` (each with the rules that
    match it alone: the words of unrelated sentences do not add up), less ``offset``,
    and that segment (what stage 2 reads). ``ruled``: whether any rule matched the whole
    text (if none did, the segments are not searched for one: a third of the cost)."""
    parts, prepared, ruling = [], [], []
    for part in segments(text, segment_size(text, budget)):
        folded = normalise(part).text
        window = prepare(folded)
        if window:
            parts.append(part)
            prepared.append(window)
            reasons = tuple(_rule_weights(folded)) if ruled else ()
            weights = model.weights[rule_features(reasons)] if reasons else None
            ruling.append(0.0 if weights is None else float(weights.sum(dtype=np.float32)))
    if not parts:
        return -math.inf, text
    logits = model.window_logits(prepared) + np.array(ruling)
    best = int(np.argmax(logits))
    return float(logits[best]) - offset, parts[best]


def _signals(
    text: str, folded: str | None, model: InjectionModel | None, segmented: bool
) -> tuple[InjectionScore, float, str | None]:
    """:func:`signals`, a long text read by segments if ``segmented``; and the segment
    that scored highest (None: the text was read whole)."""
    folded = normalise(text).text if folded is None else folded
    hidden = _hidden_texts(text, folded)
    model = InjectionModel.load() if model is None else model
    rules = _score_rules(folded, hidden)
    focus = None
    if segmented and is_long(folded):
        logit, focus = read_segments(text, model, ruled=bool(rules.reasons))
        # read whole without the rules: they matched in sentences that may be unrelated
        whole = model.logit(folded) - WHOLE_OFFSET
        if whole > logit:  # suspicious all through: stage 2 reads its top window, as before
            logit, focus = whole, None
    else:
        logit = model.logit(folded, rules.reasons)
    for payload in hidden:  # read with its own rules too: the text only says "encoded"
        reasons = tuple(sorted({*rules.reasons, *_rule_weights(payload)}))
        logit = max(logit, model.logit(payload, reasons))
    return rules, logit, focus


# Rules that score this much on their own (an explicit "ignore previous instructions",
# a system-prompt extraction, a payload that decodes to one) are a floor under the
# calibrated score. Training on hand-written look-alikes ("the previous instructions in
# the manual are outdated") taught the model to discount the rule indicators, and it
# then scored the canonical attacks, plain or encoded, under the threshold; the floor
# costs nothing on the held-out look-alikes (measured: same TPR/FPR at 0.8 and 0.85).
STRONG_RULES = 0.85


@dataclass(frozen=True, slots=True)
class StageOne:
    """Stage 1's view of a text: the rules, the n-gram logit and their calibrated score."""

    rules: InjectionScore
    logit: float
    score: InjectionScore
    # the segment of a long text that scored highest (what stage 2 reads); None: the text
    # was read whole, or its whole reading scored higher
    focus: str | None = None


def stage_one(
    text: str,
    folded: str | None = None,
    model: InjectionModel | None = None,
    segmented: bool = True,
) -> StageOne:
    """The rules and the n-gram model of :mod:`.classifier`, calibrated (see
    :func:`score_injection`); a long text read by segments (:func:`read_segments`) unless
    ``segmented`` is false (how stage 2's head was fitted)."""
    model = InjectionModel.load() if model is None else model
    rules, logit, focus = _signals(text, folded, model, segmented)
    reasons = (*rules.reasons, "classifier") if logit > 0 else rules.reasons
    probability = model.probability(rules.score, logit)
    if rules.score >= STRONG_RULES:  # the model may raise a strong rule's score, never lower it
        probability = max(probability, rules.score)
    return StageOne(rules, logit, InjectionScore(round(probability, 4), reasons), focus)


def score_injection(
    text: str, folded: str | None = None, model: InjectionModel | None = None
) -> InjectionScore:
    """The injection score of ``text``: the rules and the learned model, calibrated.

    ``reasons`` are the rules that matched, plus ``classifier`` when the learned
    model alone leans towards an injection (its logit is positive).
    """
    return stage_one(text, folded, model).score


def combine_semantic(first: StageOne, head_logit: float, head: SemanticHead) -> InjectionScore:
    """Stage 1 and the e5 head (:mod:`.semantic`) of an escalated text, calibrated; strong
    rules stay a floor. ``semantic`` joins the reasons when the head leans towards an
    injection; ``classifier`` stays only if stage 1 leaned so."""
    probability = head.probability(first.logit, head_logit)
    if first.rules.score >= STRONG_RULES:
        probability = max(probability, first.rules.score)
    reasons = first.score.reasons + (("semantic",) if head_logit > 0 else ())
    return InjectionScore(round(probability, 4), reasons)


def escalates(first: StageOne, head: SemanticHead, text: str) -> bool:
    """Whether stage 2 reads ``text``: stage 1 is unsure of it (its score in the head's
    band), no strong rule matched (it decides alone: the floor would hold whatever stage
    2 said), and it is not short (:data:`~.semantic.SHORT` bytes: "hi", "你好", "thanks"
    are many of a chat's messages, and too short for an e5 reading to add much)."""
    return (
        first.rules.score < STRONG_RULES
        and len(text.strip().encode("utf-8", "surrogatepass")) >= SHORT
        and head.escalates(first.score.score)
    )
