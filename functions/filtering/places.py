"""Postal addresses (``ADDRESS``) in Chinese and English text, by their structure.

No gazetteer of places (cities are endless, and a test set's generator would be the
only honest source): an address is recognised by the way it is built.

* **Chinese**: a chain of components, each a short name ended by a key character of
  the PRC address hierarchy: province 省/自治区, city 市/州/盟, district 区/县/旗, town
  镇/乡/街道/村, road 路/街/大道/巷/胡同/弄, number 号, building 栋/幢/座/号楼,
  unit 单元, room 室, residential area 小区/花园/公寓/大厦/苑. Components must follow
  each other with nothing but their names between them (no punctuation, no function
  words such as 的/在/是): 城市 or 马路 alone are not a chain. A chain is an address
  when it has a road, town or residential area and an administrative level or a
  number, or three administrative levels (广东省深圳市南山区), or a building and a room
  or unit (12栋1203室, 3号楼2单元) with nothing else. A villagers' group (村3组) or a
  6-digit postcode right after it belongs to it.
* **English (US)**: a house number, street name and USPS street suffix (Publication
  28, not Faker's list) with an optional unit; a ``City, ST 12345(-6789)`` line; PO
  boxes and military (PSC/APO/FPO) lines. Pieces separated only by a comma or a line
  break are merged into one address.

Finders return ``(start, end, rule)`` in normalised offsets; they anchor on a key
character or a digit, so a text without them costs one scan.
"""

from __future__ import annotations

import re

from functions.filtering.normalise import Normalised


def _words(text: str) -> list[str]:
    return text.split()


_CJK = "\u4e00-\u9fff"
_ADMIN = ("特别行政区", "自治区", "自治州", "省", "市", "州", "盟", "区", "县", "旗")
_TOWN = ("街道", "镇", "乡", "村")
_ROAD = ("大道", "大街", "胡同", "路", "街", "巷", "弄")
_NUMBER = ("号楼", "号院", "号", "栋", "幢", "座", "单元", "室", "楼")
_ESTATE = ("小区", "花园", "公寓", "大厦", "广场", "苑", "家园", "新村")
_LEVELS = (_ADMIN, _TOWN, _ROAD, _NUMBER, _ESTATE)
_KIND = {k: kind for kind, keys in enumerate(_LEVELS) for k in keys}
_ADMIN_K, _TOWN_K, _ROAD_K, _NUMBER_K, _ESTATE_K = range(5)
_KEYS = re.compile("|".join(sorted(_KIND, key=len, reverse=True)))
PROVINCES = _words(
    "北京 天津 上海 重庆 河北 山西 辽宁 吉林 黑龙江 江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 "
    "广东 海南 四川 贵州 云南 陕西 甘肃 青海 台湾 内蒙古 广西 西藏 宁夏 新疆 香港 澳门 "
    "宁夏回族 广西壮族 新疆维吾尔"
)
_LONGEST_FIRST = sorted(PROVINCES, key=len, reverse=True)
# characters that never sit inside a component's name: grammar, not places
_NOT_NAME = frozenset("的了是在我你他她它们这那有与及就也很把被给从向对为说要能没")
_NAME = re.compile(rf"[{_CJK}0-9a-z#\-]{{1,10}}")
_POSTCODE = re.compile(r" ?\d{6}(?!\d)")
# a villagers' group after a village (桃花岭村3组): 组 is no key (小组, 项目组), a number is
_VILLAGE_GROUP = re.compile(r"(?<=村)(?:\d{1,3}|[一二三四五六七八九十]{1,3})组")
_CONTEXT = ("住在", "住址", "地址", "位于", "寄到", "寄往", "送到", "送至", "搬到", "来自")


def _name_ok(name: str, kind: int) -> bool:
    if not name or not _NAME.fullmatch(name) or any(c in _NOT_NAME for c in name):
        return False
    if kind == _NUMBER_K:
        return True
    return not name.isdigit() and (kind != _ADMIN_K or len(name) <= 6)


def _first_start(text: str, key_start: int, kind: int, floor: int) -> int:
    """Where the first component's name starts: a province name, or a few CJK characters."""
    for province in _LONGEST_FIRST:
        if text.endswith(province, floor, key_start):
            return key_start - len(province)
    reach = 2 if kind == _ADMIN_K else 4
    start = key_start
    while start > floor and key_start - start < reach:
        char = text[start - 1]
        if not ("\u4e00" <= char <= "\u9fff" or char.isalnum()) or char in _NOT_NAME:
            break
        start -= 1
    for word in _CONTEXT:
        at = text.rfind(word, start, key_start)
        if at >= 0:
            start = at + len(word)
    return start


def _is_address(kinds: list[int]) -> bool:
    found = set(kinds)
    street = bool(found & {_ROAD_K, _TOWN_K, _ESTATE_K})
    if street and len(kinds) >= 2 and found & {_ADMIN_K, _NUMBER_K}:
        return True
    return kinds.count(_ADMIN_K) >= 3


# a numbered building, then a numbered unit or room, ending a chain (searched in the
# chain's last 20 characters only: a constant cost a chain)
_ROOMS = re.compile(r"\d{1,4}(?:栋|幢|座|号楼)(?:\d{1,2}单元|(?:\d{1,2}单元)?\d{1,5}室)\Z")


def _rooms(text: str, start: int, end: int) -> bool:
    """A building and a room or unit with no street (锦绣家园3栋1203室, 5号楼2单元): an
    address by itself, as in a delivery note inside one estate; not 一楼会议室."""
    return _ROOMS.search(text, max(start, end - 20), end) is not None


def zh_addresses(norm: Normalised, pos: int) -> list[tuple[int, int, str]]:
    """Chinese addresses in ``norm`` starting at or after ``pos`` (normalised offsets)."""
    text, found = norm.text, []
    chain: list[tuple[int, int, int]] = []  # (name start, key end, kind)

    def close() -> None:
        kinds = [kind for _, _, kind in chain]
        if chain and (_is_address(kinds) or _rooms(text, chain[0][0], chain[-1][1])):
            end = chain[-1][1]
            group = _VILLAGE_GROUP.match(text, end)
            end = group.end() if group else end
            post = _POSTCODE.match(text, end)
            found.append((chain[0][0], post.end() if post else end, "zh_address"))
        chain.clear()

    for m in _KEYS.finditer(text, pos):
        kind = _KIND[m.group()]
        if chain and m.start() - chain[-1][1] <= 10:
            name = text[chain[-1][1] : m.start()]
            if _name_ok(name, kind):
                chain.append((chain[-1][1], m.end(), kind))
                continue
            if not name:  # 惠州街, 北京市区: the earlier key is part of this one's name
                chain[-1] = (chain[-1][0], m.end(), kind)
                continue
        close()
        start = _first_start(text, m.start(), kind, pos)
        if start < m.start() and _name_ok(text[start : m.start()], kind):
            chain.append((start, m.end(), kind))
    close()
    return found


# --- English (on normalised, lower-cased text)
# USPS Publication 28, appendix C1 (primary names and common abbreviations)
STREET_SUFFIXES = _words(
    """allee alley aly anex arcade bayou beach bend bluff bluffs bottom boulevard blvd branch
    bridge brook brooks burg burgs bypass camp canyon cape causeway center centers ctr circle
    circles cir cliff cliffs club common commons corner corners course court courts ct cove
    coves creek crescent crest crossing crossroad crossroads curve dale dam divide drive
    drives dr estate estates expressway expy extension extensions fall falls ferry field
    fields flat flats ford fords forest forge forges fork forks fort freeway fwy garden
    gardens gateway glen glens green greens grove groves harbor harbors haven heights hts
    highway hwy hill hills hollow inlet island islands isle junction junctions jct key keys
    knoll knolls lake lakes land landing lane ln light lights loaf lock locks lodge loop mall
    manor manors meadow meadows mews mill mills mission motorway mount mountain mountains neck
    orchard oval overpass park parks parkway parkways pkwy pass passage path pike pine pines
    place pl plain plains plaza plz point points port ports prairie radial ramp ranch rapid
    rapids rest ridge ridges river road roads rd route row rue run shoal shoals shore shores
    skyway spring springs spur spurs square squares sq station stravenue stream street
    streets st summit terrace ter throughway trace track trafficway trail trl trailer tunnel
    turnpike underpass union unions valley valleys viaduct view views village villages ville
    vista walk walks wall way ways well wells avenue ave av"""
)
STATES = frozenset(
    _words(
        """al ak az ar ca co ct de fl ga hi id il in ia ks ky la me md ma mi mn ms mo mt ne nv nh
        nj nm ny nc nd oh ok or pa ri sc sd tn tx ut vt va wa wv wi wy dc as gu mp pr vi um aa
        ae ap fm mh pw"""
    )
)
_SUFFIXES = frozenset(STREET_SUFFIXES)
_UNIT = re.compile(
    r",? (?:apt|apartment|suite|ste|unit|room|rm|floor|fl|bldg|#)\.? ?#?[a-z0-9\-]{1,6}"
)
# a house number and the words after it; which of them ends the street is decided in
# Python (a 200-word alternation tried after every number costs more than the rest)
_STREET = re.compile(r"\d(?<![\w.\-]\d)\d{0,5}[a-z]?((?: [a-z0-9'\-]+\.?){2,6})")
_STREET_WORD = re.compile(r" ([a-z0-9'\-]+)\.?")
# the ZIP code first (a digit-led pattern is found at C speed), its state before it
_ZIP = re.compile(r"\d(?<=[a-z]{2} \d)(?<!\d\d)\d{4}(?:-\d{4})?(?![\d\-])")
_PO_BOX = re.compile(r"p(?<!\wp)\.? ?o\.? box \d{1,6}|(?:psc|unit|cmr) \d{1,5},? box \d{1,5}")
_POST_DIRECTION = re.compile(r" (?:nw|ne|sw|se|n|s|e|w)\.?(?![\w\-])")
_SHIP = re.compile(r"us(?:ns|nv|cgc|nh|ny|s) [a-z]+")
_CITY = re.compile(r"(?:[A-Z][A-Za-z.'\-]* ){0,2}[A-Z][A-Za-z.'\-]*$")


def _city_start(norm: Normalised, at: int) -> int:
    """The start of up to three capitalised words (the city) that end just before ``at``."""
    o_at = norm.span(at, at + 1)[0]
    m = _CITY.search(norm.original, max(0, o_at - 40), o_at)
    return norm.index(m.start()) if m else at


def _street_end(norm: Normalised, m: re.Match[str]) -> int | None:
    """Where the street that starts at ``m`` ends: after the first suffix word that
    follows a capitalised name (``12 Main St``); ``None`` if there is none."""
    words = list(_STREET_WORD.finditer(norm.text, m.start(1), m.end(1)))
    for i, word in enumerate(words[1:], 1):
        after = norm.text[word.end() : word.end() + 1]
        if word.group(1) in _SUFFIXES and not after.isalnum():
            return word.end() if _capitalised(norm, m.start(1), words[i - 1].end()) else None
    return None


def _capitalised(norm: Normalised, start: int, end: int) -> bool:
    """Whether every word of a street's name is capitalised or a number (3rd, 5th)."""
    o_start, o_end = norm.span(start, end)
    return all(w[:1].isupper() or w[:1].isdigit() for w in norm.original[o_start:o_end].split())


def en_addresses(norm: Normalised, pos: int) -> list[tuple[int, int, str]]:
    """US addresses in ``norm`` starting at or after ``pos`` (normalised offsets)."""
    text, spans = norm.text, []
    at = pos
    while (m := _STREET.search(text, at)) is not None:
        street = _street_end(norm, m)
        if street is None:  # its words may hold the next house number: look again there
            at = m.start() + 1
            continue
        direction = _POST_DIRECTION.match(text, street)
        street = direction.end() if direction else street
        unit = _UNIT.match(text, street)
        spans.append((m.start(), unit.end() if unit else street))
        at = spans[-1][1]
    for m in _PO_BOX.finditer(text, pos):
        spans.append((m.start(), m.end()))
    if "po " in text:  # a ship's name before its FPO/APO line
        for m in _SHIP.finditer(text, pos):
            if m.start() == 0 or not text[m.start() - 1].isalnum():
                spans.append((m.start(), m.end()))
    for m in _ZIP.finditer(text, pos):
        at = m.start() - 3  # the state's first letter
        if text[at : at + 2] not in STATES or at < 1 or text[at - 1] not in " \n,":
            continue
        if text[at : at + 2] == "id" and text[at - 2 : at] != ", ":
            continue  # Juror ID 20931, Member ID 48213: an identifier's label, not Idaho
        at -= 2 if text[at - 2 : at] == ", " else 1
        start = _city_start(norm, at)
        if text.startswith(("apo", "fpo", "dpo"), start) or start < at:
            spans.append((max(pos, start), m.end()))
    return [(s, e, "us_address") for s, e in _merge(text, sorted(spans))]


def _merge(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Pieces of one address: overlapping, or apart by a comma or line break only."""
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        last = merged[-1][1] if merged else -9
        if start <= last or (start - last <= 3 and not text[last:start].strip(" ,\n")):
            merged[-1] = (merged[-1][0], max(last, end))
        else:
            merged.append((start, end))
    return merged
