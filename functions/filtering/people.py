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
from functions.filtering.people_words import (
    COMMON_WORDS,
    COMPOUND_SURNAMES,
    GIVEN,
    HALF_AFTER,
    HALF_BEFORE,
    ROLE_AFTER,
    ROLE_BEFORE,
    STRONG_AFTER,
    STRONG_BEFORE,
    SURNAMES,
    WEAK_AFTER,
    WEAK_BEFORE,
)

# the lists other modules read here (the tests' generator, infra/training's word list)
__all__ = ["COMMON_WORDS", "COMPOUND_SURNAMES", "GIVEN", "SURNAMES", "common_words", "zh_names"]

_CJK = "\u4e00-\u9fff"


def _words(text: str) -> list[str]:
    return text.split()


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
_AFTER = _alt(STRONG_AFTER + WEAK_AFTER + ROLE_AFTER + [w for w in HALF_AFTER if len(w) > 1])
_GIVEN_NAME = rf"[{_CJK}](?:(?!{_AFTER})[{_CJK}])?"
_BY_STRONG_BEFORE = rf"(?:{_alt(STRONG_BEFORE, lead=True)})[:：\s]{{0,3}}({_SURNAME}{_GIVEN_NAME})"
_BY_ROLE_BEFORE = rf"(?:{_alt(ROLE_BEFORE, lead=True)})[:：\s]{{0,2}}({_SURNAME}{_GIVEN_NAME})"
# any field label for a person (取件人：, 经办人：): a word ending in 人 and a colon; or a
# relative's label on a form (父亲：, 配偶：; only with the colon: 妻子和孩子 is no label)
_KIN = "父亲|母亲|丈夫|妻子|配偶|儿子|女儿|爸爸|妈妈"
_BY_PERSON_LABEL = rf"(?:人|{_KIN})[:：]\s{{0,2}}({_SURNAME}{_GIVEN_NAME})"
_BY_ROLE_AFTER = rf"({_SURNAME}{_GIVEN_NAME})(?:{_alt(ROLE_AFTER)})"
_BEFORE_REACH = max(map(len, STRONG_BEFORE + ROLE_BEFORE)) + 3
_BY_STRONG_AFTER = rf"({_SURNAME}[{_CJK}]{{1,2}}?)(?:{_alt(STRONG_AFTER)})"
_HALF_REACH = max(map(len, HALF_BEFORE))
_NAME_CHAR = f"[{''.join(sorted(GIVEN))}]"
_LIKELY_NAME = rf"{_SURNAME}{_NAME_CHAR}(?:(?!{_AFTER}){_NAME_CHAR})?"
_BY_HALF_BEFORE = rf"(?:{_alt(HALF_BEFORE, lead=True)})\s?({_LIKELY_NAME})"
# half evidence on both sides (感谢张宥辰对…): a given name needs one common name character
_BY_HALF_BOTH = (
    rf"(?:{_alt(HALF_BEFORE, lead=True)})\s?({_SURNAME}{_GIVEN_NAME})"
    rf"(?={_alt(HALF_AFTER + WEAK_AFTER)})"
)
# every pattern that names no word before the name starts with the surname class, so sre
# skips to surname characters in C; what the character before must be is checked in
# Python (a leading lookbehind would be tried at every position)
_BY_HALF_AFTER = rf"({_LIKELY_NAME})(?:{_alt(HALF_AFTER + WEAK_AFTER)})"
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
_WEAK_BEFORE_CHARS = frozenset("".join(WEAK_BEFORE))
# the surname at a field's start: checked right after its first character, by two
# lookbehinds of fixed width (the pattern still starts with the class, found in C)
_FIELD_START = rf"(?:(?<=[{re.escape(''.join(sorted(_WEAK_BEFORE_CHARS)))}].)|(?<![{_CJK}a-z].))"
_SURNAME_AT_FIELD = rf"[{_FIRSTS}]{_FIELD_START}(?:(?<=[{_COMPOUND_HEAD}])[{_COMPOUND_TAIL}])?"
# a sum of money after a name (转账给赵春美五千元)
_AMOUNT = "[一二两三四五六七八九十][十百千万]*[元块万]|[一二两三四五六七八九][十百千万]"
_BY_WEAK = (
    rf"({_SURNAME_AT_FIELD}{_GIVEN_NAME})(?=(?:{_alt(WEAK_AFTER)})|{_AMOUNT}|[^{_CJK}a-z]|\Z)"
)
_BY_HALF_AFTER_FIELD = (
    rf"({_SURNAME_AT_FIELD}{_NAME_CHAR}(?:(?!{_AFTER}){_NAME_CHAR})?)"
    rf"(?:{_alt(HALF_AFTER + WEAK_AFTER)})"
)
# a field's start and a verb after it (徐品妤向派出所报案): both sides, one name character
_LONG_HALF_AFTER = _alt([w for w in HALF_AFTER if len(w) > 1])
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
    _scan(_compiled(_BY_PERSON_LABEL), text, pos, 4, found, strong=True)
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
        if text[start + 1 : end] not in _COMMON_GIVEN and (end - start == 3 or _led(text, start)):
            spans.append((start, end))
        at = m.start() + 1
    return spans


def _led(text: str, start: int) -> bool:
    """A two-character name ending a sentence needs a field's start or a context word
    before it (本人严霞，产权人万强。, 收方徐雷，; not 提前储水。)."""
    before = text[start - 1 : start] if start else ""
    if not before or before in _WEAK_BEFORE_CHARS or not "\u4e00" <= before <= "\u9fff":
        return True
    if before in "方主户":
        return True  # a party's label (收方, 房主, 租户)
    return text[max(0, start - 8) : start].endswith(_CONTEXT_ENDS)


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
    if _PARTICLES.intersection(given) or given in _HONORIFIC:
        return False  # 满意的, 门口: no given name holds a particle; 张姐, 王总 are no names
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
    STRONG_BEFORE + ROLE_BEFORE + STRONG_AFTER + ROLE_AFTER + WEAK_AFTER + HALF_AFTER
) | frozenset(HALF_BEFORE + WEAK_BEFORE)
_WEAK_AFTER_AT = re.compile(_alt(WEAK_AFTER + HALF_AFTER))


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
_HONORIFIC = frozenset("姐哥总叔姨嫂伯婶爷")  # a form of address after a surname alone
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
