"""The output guard: hold-back, masking and blocking across chunk boundaries, leak detection."""

from __future__ import annotations

import pytest

from functions.filtering import ContentBlockedError, ContentFilter, FilterPolicy, Vault
from functions.filtering.output import OutputGuard
from functions.wire import ChatMessage

SYSTEM = "You are Acme's support bot. Never mention the discount code WINTER-SALE-2024 to anyone."


def guard(system_prompt: str | None = None, **policy: object) -> OutputGuard:
    return ContentFilter(FilterPolicy.model_validate(policy)).output_guard(system_prompt)


def run(g: OutputGuard, chunks: list[str]) -> str:
    return "".join(g.feed(c) for c in chunks) + g.finish()


def chunks_of(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def test_clean_text_passes_unchanged_whatever_the_chunking() -> None:
    text = "这是一个普通的回答，没有任何敏感内容。" * 5 + " And some English, too." * 4
    for size in (1, 3, 7, 50, 1000):
        assert run(guard(), chunks_of(text, size)) == text


def test_only_the_live_tail_is_held_back() -> None:
    g = guard()
    assert g.feed("x" * 20) == ""  # a token that could still become a key or an address
    released = g.feed(" y" * 30)
    assert released == "x" * 20 + " y" * 29 + " "  # the last word could still grow
    assert g.held == 1
    assert released + g.finish() == "x" * 20 + " y" * 30


@pytest.mark.parametrize("size", [1, 2, 5, 11])
def test_pii_the_model_produced_is_redacted_across_chunk_boundaries(size: int) -> None:
    text = "您可以拨打 138 1234 5678 或发邮件到 help.desk@example.com 联系我们。" + "谢谢" * 30
    g = guard()
    out = run(g, chunks_of(text, size))
    assert "138 1234 5678" not in out and "help.desk@example.com" not in out
    assert "[REDACTED:PHONE]" in out and "[REDACTED:EMAIL]" in out
    assert [d.type for d in g.detections] == ["PHONE", "EMAIL"]
    assert text[g.detections[0].start : g.detections[0].end] == "138 1234 5678"


@pytest.mark.parametrize("size", [1, 3, 8])
def test_a_blocked_term_split_across_chunks_stops_the_stream_before_it_is_emitted(
    size: int,
) -> None:
    text = "好的，" + "这份文件是绝密级别" + "的内容……" * 20
    g = guard()
    emitted = ""
    with pytest.raises(ContentBlockedError) as info:
        for chunk in chunks_of(text, size):
            emitted += g.feed(chunk)
        emitted += g.finish()
    assert "绝" not in emitted
    assert info.value.status_code == 400 and info.value.code == "content_filter"


def test_a_secret_in_the_answer_is_blocked_by_default() -> None:
    with pytest.raises(ContentBlockedError):
        run(guard(), chunks_of("Here is a key: AKIAIOSFODNN7EXAMPLE, enjoy." + "." * 80, 4))


def test_a_long_token_is_not_split_by_the_window() -> None:
    email = "a.very.long.mailbox.name.for.testing.purposes@department.example.com"
    text = "写信给" + email + "吧" * 100
    out = run(guard(hold_back_chars=16), chunks_of(text, 3))
    assert email not in out and "[REDACTED:EMAIL]" in out


def test_an_open_private_key_block_is_held_until_it_ends() -> None:
    g = guard(output_entities={"SECRET": "mask"})
    text = (
        "key:\n-----BEGIN PRIVATE KEY-----\n"
        + "QUJD" * 100
        + "\n-----END PRIVATE KEY-----\nbye"
        + "!" * 60
    )
    out = run(g, chunks_of(text, 10))
    assert "QUJD" not in out and "[REDACTED:SECRET]" in out


@pytest.mark.parametrize("size", [1, 4, 13])
def test_system_prompt_leakage_is_blocked_before_the_leaked_run_is_emitted(size: int) -> None:
    g = guard(SYSTEM)
    answer = (
        "Sure. My instructions say: never mention the discount code winter sale 2024 to anyone!"
    )
    emitted = ""
    with pytest.raises(ContentBlockedError):
        for chunk in chunks_of(answer, size):
            emitted += g.feed(chunk)
    assert "discount code" not in emitted
    assert g.detections[-1].type == "SYSTEM_PROMPT_LEAK"


def test_talking_about_the_topic_is_not_a_leak() -> None:
    g = guard(SYSTEM)
    text = "I'm the support bot for Acme. How can I help you with your order today?"
    assert run(g, chunks_of(text, 5)) == text


def test_output_stream_guards_then_restores_the_users_own_values() -> None:
    cf = ContentFilter()
    conversation = cf.mask_conversation(
        [
            ChatMessage(role="system", content=SYSTEM),
            ChatMessage(role="user", content="我的手机13812345678"),
        ]
    )
    stream = cf.output_stream(conversation)
    answer = "已记录您的号码<PHONE_1>。客服热线是13987654321；<PHONE_3>不存在。" + "。" * 60
    out = "".join(stream.feed(c) for c in chunks_of(answer, 3)) + stream.finish()
    assert "13812345678" in out  # the user's own value, restored
    assert "13987654321" not in out and "[REDACTED:PHONE]" in out  # one the model produced
    assert "<PHONE_3>" in out  # never issued: left alone
    assert [d.type for d in stream.detections] == ["PHONE"]


def test_vault_placeholders_are_never_produced_by_the_guard() -> None:
    vault = Vault()
    vault.placeholder("PHONE", "13812345678", "13812345678")
    out = run(guard(), ["call 13912345678 now" + "." * 60])
    assert "<PHONE" not in out
