"""Writes ``functions/filtering/data/common_words_zh.txt``: frequent Chinese words that
begin or end with a surname character (居然, 非常, 温馨, 过程…).

A name candidate on weak evidence is rejected when it is, or begins with, one of these
words, or when its surname is the end of one with the character before it (非常好: 常好
is no name). Source: jieba's dictionary (``jieba/dict.txt``: word, frequency, part of
speech) in the PyPI sdist ``jieba==0.42.1`` (MIT); words rarer than ``MIN_FREQ`` are
left out, and so are three-character words tagged as person names (``nr``: mostly real
names); jieba tags many ordinary two-character words ``nr`` too, and those reject only a
candidate that is exactly the word. Not Faker's data.

Usage: ``pip download jieba==0.42.1 --no-deps --no-binary :all: -d /tmp/j``, unpack it,
then ``python infra/training/make_common_words_zh.py /tmp/j/jieba-0.42.1/jieba/dict.txt``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from functions.filtering.people import COMPOUND_SURNAMES, SURNAMES

OUT = (
    Path(__file__).resolve().parents[2] / "functions" / "filtering" / "data" / "common_words_zh.txt"
)
MIN_FREQ = 100  # jieba's counts (30 drops 6% more false finds on reviews, for more risk to names)
MIN_FREQ_NR = 500
HEADER = (
    "# Frequent Chinese words that begin or end with a surname character, from jieba 0.42.1's\n"
    "# dict.txt (MIT). Made by infra/training/make_common_words_zh.py. A line ending in ' ='\n"
    "# is a two-character word jieba tags as a name (nr) that is mostly an ordinary word\n"
    "# (明白, 智慧, 温泉): it rejects only a candidate that is exactly that word.\n"
)


def main(dictionary: str) -> None:
    surnames = set(SURNAMES) | {c[0] for c in COMPOUND_SURNAMES}
    compounds = set(COMPOUND_SURNAMES)
    words: dict[str, str] = {}
    for line in Path(dictionary).read_text(encoding="utf-8").splitlines():
        word, freq, tag = line.split()
        if int(freq) < MIN_FREQ or len(word) not in (2, 3):
            continue
        if not (word[0] in surnames or word[1] in surnames):
            continue
        if word[:2] in compounds or word[1] == "家":
            continue  # 欧阳, 董家 ("the Dong family"): the start of a name, not a word
        if not tag.startswith("nr"):
            words[word] = word
        elif tag == "nr" and len(word) == 2 and int(freq) >= MIN_FREQ_NR:
            # three-character nr words are mostly real names (韦小宝): left out; so are
            # two-character ones below MIN_FREQ_NR (周瑜, 316) and nrfg/nrt (李强)
            words.setdefault(word, word + " =")
    OUT.write_text(HEADER + "\n".join(sorted(words.values())) + "\n", encoding="utf-8")
    print(f"{len(words)} words -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
