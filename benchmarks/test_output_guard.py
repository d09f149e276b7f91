"""The streaming output guard per chunk: its cost, and how much text it holds back.

An answer of about 1,500 characters (Faker prose in English or Chinese, with a phone
number, an email and a lexicon term in it) is fed to :meth:`ContentFilter.output_guard`
the way a model streams it: one word per chunk, the space in front (`` word``), or
two CJK characters per chunk. Reported: the guard's cost per chunk (median over the
rounds of the whole answer, divided by the chunks), the characters held after each
chunk (mean and max), and how many chunks arrive before the first text is released:
with an upstream that sends a word every 20 ms, that count less one, times 20 ms, is what the
guard adds to the time to first content.

On this VM (2 cores shared with other jobs, CPU time, best of 7), against the shipped
lexicons: the fixed 32-character window the guard used before held 34 characters on
average (49 at most) and released nothing before the 6th English chunk or the 17th
Chinese one, at 46 µs a chunk. The live tail holds 6 characters on average in English
(21 at most; the word that ends a chunk waits for the next character) and under one in
Chinese, releases text with the 2nd English chunk (the first, ``Sure.``, could still
grow into an address) and the 1st Chinese one, at 70 to 75 µs a chunk.
Run: ``pytest benchmarks/test_output_guard.py --benchmark-only -s``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from faker import Faker

from benchmarks.conftest import report
from functions.filtering import ContentFilter

WORDS = re.compile(r"\s*\S+")


def _answer(lang: str) -> list[str]:
    fake = Faker("zh_CN" if lang == "zh" else "en_US")
    fake.seed_instance(13)
    if lang == "zh":
        text = "好的，请拨打13812345678或写信到li.lei@example.com，这是内部资料。"
        while len(text) < 1500:
            text += fake.text(max_nb_chars=200)
        return [text[i : i + 2] for i in range(0, len(text), 2)]
    text = "Sure. Call 138-1234-5678 or mail li.lei@example.com, internal use only. "
    while len(text) < 1500:
        text += fake.text(max_nb_chars=200) + " "
    return WORDS.findall(text)


def _stream(cf: ContentFilter, chunks: list[str]) -> tuple[str, list[int], int]:
    guard = cf.output_guard()
    released, held, first = [], [], 0
    for n, chunk in enumerate(chunks, start=1):
        released.append(guard.feed(chunk))
        held.append(guard.held)
        if not first and released[-1]:
            first = n
    released.append(guard.finish())
    return "".join(released), held, first


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_output_guard_per_chunk(benchmark: Any, lang: str) -> None:
    cf = ContentFilter()
    chunks = _answer(lang)
    out, held, first = benchmark(_stream, cf, chunks)
    assert "13812345678" not in out.replace("-", "") and "[REDACTED:EMAIL]" in out
    per_chunk_us = benchmark.stats.stats.median * 1e6 / len(chunks)
    report(
        benchmark,
        f"output guard {lang}",
        chunks=len(chunks),
        per_chunk_us=per_chunk_us,
        held_mean_chars=sum(held) / len(held),
        held_max_chars=max(held),
        chunks_before_first_release=first,
    )
