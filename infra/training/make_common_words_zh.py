"""Writes ``functions/filtering/data/common_words_zh.txt``: frequent Chinese words that
begin or end with a surname character (居然, 非常, 温馨, 过程…).

A name candidate on weak evidence is rejected when it is, or begins with, one of these
words, or when its surname is the end of one with the character before it (非常好: 常好
is no name). Source: jieba's dictionary (``jieba/dict.txt``: word, frequency, part of
speech) in the PyPI sdist ``jieba==0.42.1`` (MIT); words rarer than ``MIN_FREQ`` are
left out, and so are words tagged as person names (``nr``…): jieba tags many ordinary
words so (智慧, 温泉), but also real names (李鹏, 高峰) that must stay names. Not Faker's
data.

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
HEADER = (
    "# Frequent Chinese words that begin or end with a surname character, from jieba 0.42.1's\n"
    "# dict.txt (MIT; words tagged as names left out). Made by\n"
    "# infra/training/make_common_words_zh.py.\n"
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
            # words tagged as names are left out: jieba tags many ordinary words nr
            # (智慧, 温泉), but also 李鹏, 李俊, 高峰, names a candidate must keep
            words[word] = word
    OUT.write_text(HEADER + "\n".join(sorted(words.values())) + "\n", encoding="utf-8")
    print(f"{len(words)} words -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
