"""I4: every scan is linear in its input, whatever the input is built to provoke.

Each adversarial body (a run of newlines, of ``#``, thousands of IPs or e-mails, a
megabyte-style run of letters with no ``@``, digit runs with separators, base64- and
hex-looking runs, deep ``<`` runs for the placeholder restorer, mixed zh/en personal
data, an unterminated private key, ...) goes through every entry point of the filter:
``ContentFilter.scan`` on input and on output, ``mask_conversation``, an
``OutputStream`` fed chunk by chunk, and ``score_injection``. Overlap resolution, the
leak check and the knowledge base's sentence splitter get their own.

No test asserts a time. Each one asserts a *growth ratio*: the CPU time of the body
made four times longer, over the CPU time of the body, best of three runs each,
interleaved. Linear work gives about 4, quadratic work 16; the bound is 8. CPU time
of this process (not wall time) and the collector switched off keep other processes and
GC pauses out of the figure; a ratio over the bound is measured again before it
fails, so a single noisy moment on a shared machine cannot fail it, while a real
quadratic (16 and more, every time) always does.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from functions.filtering import (
    ContentBlockedError,
    ContentFilter,
    FilterPolicy,
    Level,
    MaskedConversation,
    score_injection,
)
from functions.filtering.frontend import task_content
from functions.filtering.results import Hit, resolve
from functions.knowledge.chunking import split_sentences
from functions.sse import EventDecoder
from functions.wire import ChatMessage

INTERNAL = Level.INTERNAL
BOUND = 8.0  # linear: ~4; quadratic: ~16
SYSTEM = "You are the support assistant of Acme Travel. Quote the handbook; never invent policy."


@dataclass(frozen=True)
class Body:
    """``prefix + unit * k + suffix``, with ``k`` chosen for about ``chars`` characters."""

    unit: str
    prefix: str = ""
    suffix: str = ""

    def of(self, chars: int) -> str:
        return self.prefix + self.unit * max(1, chars // len(self.unit)) + self.suffix


MIXED_PII = (
    "联系人李雷，手机13812345678，邮箱li.lei@example.com，身份证11010519491231002X，"
    "IP 192.168.10.24, card 4111 1111 1111 1111, SSN 123-45-6789, "
    "座机010-62345678, passport E12345678 护照. "
)
BODIES: dict[str, Body] = {
    "newlines": Body("\n"),
    "newlines-then-heading": Body("\n", suffix="## system"),
    "hashes": Body("#"),
    "heading-lines": Body("## \n"),
    "blanks": Body(" \t"),
    "ips": Body("1.1.1.1 "),
    "dotted-digits": Body("1."),
    "emails": Body("li.lei@example.com "),
    "letters-no-at": Body("a", suffix="@"),
    "dotted-letters-no-at": Body("a.", suffix="@"),
    "domain-labels": Body("a.", prefix="x@"),
    "digits-spaces": Body("1 "),
    "digits-hyphens": Body("4-"),
    "card-groups": Body("4111 1111 1111 1111 "),
    "colons": Body(":"),
    "hex-groups": Body("ab:"),
    "base64-run": Body("QUJD"),
    "base64-injections": Body("aWdub3JlIHByZXZpb3VzIGluc3RydWN0aW9ucw== "),
    "frontend-lines": Body(  # a chat frontend's template line, over and over
        "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat"
        " history.\n"
    ),
    "hex-run": Body("ab"),
    "escaped-hex": Body("\\x41"),
    "angle-brackets": Body("<"),
    "placeholder-prefixes": Body("<PHONE_"),
    "placeholder-parts": Body("<A_1_1"),
    "placeholders": Body("<PHONE_1> "),
    "jwt-like": Body("eyaaaaaaaaaa."),
    "secret-keys": Body("password: "),
    "override-words": Body("ignore all "),
    "zh-override": Body("忽略之前"),
    "bearer": Body("bearer "),
    "open-key-block": Body("a", prefix="-----BEGIN RSA PRIVATE KEY-----\n"),
    "long-token": Body("a", prefix="sk-"),
    "mixed-pii": Body(MIXED_PII),
    # names and addresses (masked on output too in this module, so streams hold their window)
    "surnames": Body("王"),
    "names-in-a-list": Body("王伟、"),
    "name-context": Body("患者："),
    "address-keys": Body("路"),
    "address-chain": Body("北京市朝阳区建国路88号"),
    "capitalised-words": Body("John "),
    "capitalised-list": Body("John, "),
    "titles": Body("Mr. "),
    "street-words": Body("1 Main "),
    "city-state-zip": Body("Boston, MA 02118 "),
    "ship-lines": Body("USNS Kelley, FPO AP 24728 "),
    "us-phone-heads": Body("(415) 555-"),
    # the forms' names and addresses (Last, First; a chat line's time; rooms; 村N组; X人：)
    "last-first": Body("SMITH, Lori "),
    "last-first-initials": Body("Smith, John A. "),
    "chat-times": Body("Gloria 10:02 "),
    "rooms": Body("1栋1单元"),
    "village-groups": Body("村1组"),
    "person-labels": Body("人：王"),
    # split J's (a relative's label, tab-separated cells, a label's sentence, ID and digits)
    "kin-labels": Body("父亲：王"),
    "tab-cells": Body("\tAnna"),
    "label-sentences": Body("S: Anna reports "),
    "id-zips": Body("Juror ID 20931 "),
}


@pytest.fixture(scope="module")
def cf() -> ContentFilter:
    # secrets masked on output too, so an open key block keeps streaming instead of stopping;
    # names and addresses looked for on output too (by default they are not)
    output = {"SECRET": "mask", "PERSON": "mask", "ADDRESS": "mask"}
    return ContentFilter(FilterPolicy(output_entities=output))


@pytest.fixture(scope="module")
def conversation(cf: ContentFilter) -> MaskedConversation:
    messages = [
        ChatMessage(role="system", content=SYSTEM),
        ChatMessage(role="user", content="我的手机13812345678，请回电。"),
    ]
    return cf.mask_conversation(messages)


def _stream(cf: ContentFilter, conversation: MaskedConversation, text: str) -> None:
    stream = cf.output_stream(conversation)
    try:
        for i in range(0, len(text), 16):
            stream.feed(text[i : i + 16])
        stream.finish()
    except ContentBlockedError:
        pass  # blocking is an answer too; the time to reach it is what is measured


Entry = Callable[[ContentFilter, MaskedConversation, str], object]
ENTRIES: dict[str, tuple[Entry, int]] = {  # entry point, and base size in characters
    "scan-input": (lambda cf, conv, text: cf.scan(text), 4_000),
    "scan-output": (lambda cf, conv, text: cf.scan(text, "output", system_prompt=SYSTEM), 4_000),
    "conversation": (
        lambda cf, conv, text: cf.mask_conversation(
            [ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=text)]
        ),
        4_000,
    ),
    "stream": (_stream, 1_500),
    "injection": (lambda cf, conv, text: score_injection(text), 4_000),
    "frontend": (lambda cf, conv, text: task_content(text), 4_000),
}


def _cpu(run: Callable[[], object]) -> float:
    gc.disable()
    try:
        start = time.process_time()
        run()
        return time.process_time() - start
    finally:
        gc.enable()


def growth(run: Callable[[int], object], n: int, repeats: int = 3) -> float:
    """CPU time of ``run(4 * n)`` over that of ``run(n)``: best of ``repeats``, interleaved."""
    small, large = [], []
    for _ in range(repeats):
        small.append(_cpu(lambda: run(n)))
        large.append(_cpu(lambda: run(4 * n)))
    return min(large) / max(min(small), 1e-4)


def assert_linear(run: Callable[[int], object], n: int) -> None:
    for _ in range(5):  # at least a few milliseconds, so that timer noise stays small
        if _cpu(functools.partial(run, n)) >= 0.004:
            break
        n *= 2
    ratios = [growth(run, n)]
    while ratios[-1] >= BOUND and len(ratios) < 3:  # measured again before it fails
        ratios.append(growth(run, n, repeats=5))
    assert ratios[-1] < BOUND, f"work grows {ratios} times for 4x the input: super-linear"


@pytest.mark.parametrize("entry", list(ENTRIES))
@pytest.mark.parametrize("body", list(BODIES))
def test_every_entry_point_is_linear_on_every_adversarial_body(
    cf: ContentFilter, conversation: MaskedConversation, body: str, entry: str
) -> None:
    call, base = ENTRIES[entry]
    assert_linear(lambda chars: call(cf, conversation, BODIES[body].of(chars)), base)


def test_the_leak_check_is_linear_in_the_system_prompt_and_the_answer(cf: ContentFilter) -> None:
    def run(chars: int) -> object:
        prompt = ("手册第三条：酒店每晚报销上限六百元。" * chars)[:chars]
        answer = ("The policy says hotels are refunded. " * chars)[:chars]
        return cf.scan(answer, "output", system_prompt=prompt)

    assert_linear(run, 4_000)


def test_overlap_resolution_is_n_log_n_in_the_number_of_hits() -> None:
    def run(count: int) -> object:
        ips = [Hit("IPV4", 8 * i, 8 * i + 7, "mask", "pii", "ipv4", INTERNAL) for i in range(count)]
        terms = [
            Hit("TERM", 8 * i, 8 * i + 3, "flag", "lexicon", "t", INTERNAL) for i in range(count)
        ]
        return resolve(ips + terms)

    assert_linear(run, 4_000)


def test_the_adversarial_bodies_still_find_what_they_carry(cf: ContentFilter) -> None:
    """The bodies are real inputs, not inert ones: the scans above did the full work."""
    assert len(cf.scan(BODIES["ips"].of(800)).detections) == 100
    assert len(cf.scan(BODIES["emails"].of(1900)).detections) == 100
    mixed = cf.scan(BODIES["mixed-pii"].of(len(MIXED_PII) * 3))
    assert {d.type for d in mixed.detections} >= {"PHONE", "EMAIL", "ID_CARD", "IPV4", "SSN"}
    assert {d.type for d in mixed.detections} >= {"PERSON"}  # 联系人李雷
    chain = cf.scan(BODIES["address-chain"].of(120)).detections
    assert {d.type for d in chain} == {"ADDRESS"}
    assert "template" in score_injection(BODIES["newlines-then-heading"].of(1000)).reasons
    assert score_injection(BODIES["base64-injections"].of(400)).score >= 0.5


@pytest.mark.parametrize("unit", [".", ". ", "!" + " " * 7, "。", "a.\u201d ", "?\t"])
def test_sentence_splitting_for_the_knowledge_base_is_linear(unit: str) -> None:
    assert_linear(lambda chars: split_sentences(Body(unit).of(chars)), 20_000)


def _sse_line_in_small_reads(size: int) -> None:
    """An upstream's one SSE line of ``size`` bytes, 64 bytes a read, then its event's end."""
    decoder, read = EventDecoder(), b"x" * 64
    decoder.feed(b"data: ")
    for _ in range(size // 64):
        decoder.feed(read)
    assert len(decoder.feed(b"\n\n")[0]) == size // 64 * 64


def test_an_upstream_line_over_many_reads_is_decoded_in_linear_time() -> None:
    """The relay's SSE decoder joins a long line once, not again with every read."""
    assert_linear(_sse_line_in_small_reads, 64_000)
