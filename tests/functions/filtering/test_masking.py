"""Placeholders: consistent per conversation, restored exactly, never resolved when not issued."""

from __future__ import annotations

from functions.filtering import ContentFilter, StreamRestorer, Vault
from functions.wire import ChatMessage

PHONE = "13812345678"
EMAIL = "li.lei@example.com"


def conversation(*texts: str) -> list[ChatMessage]:
    roles = ["user", "assistant"]
    return [ChatMessage(role=roles[i % 2], content=t) for i, t in enumerate(texts)]  # type: ignore[arg-type]


def test_the_same_value_gets_the_same_placeholder_across_messages() -> None:
    masked = ContentFilter().mask_conversation(
        conversation(
            f"我的手机{PHONE}，邮箱{EMAIL}",
            "好的，已记录。",
            f"再确认一次：{PHONE}，另一个13987654321",
        )
    )
    texts = [m.text() for m in masked.messages]
    assert texts[0] == "我的手机<PHONE_1>，邮箱<EMAIL_1>"
    assert texts[2] == "再确认一次：<PHONE_1>，另一个<PHONE_2>"
    assert all(PHONE not in t and EMAIL not in t for t in texts)


def test_surface_forms_of_one_value_share_a_placeholder() -> None:
    masked = ContentFilter().mask_conversation(conversation(f"{PHONE} 或 138-1234-5678"))
    assert masked.messages[0].text() == "<PHONE_1> 或 <PHONE_1>"
    assert masked.vault.resolve("<PHONE_1>") == PHONE  # the first form seen


def test_masking_is_deterministic_so_a_stateless_gateway_rebuilds_the_vault() -> None:
    messages = conversation(f"a {EMAIL}", "ok", f"b {PHONE} {EMAIL}")
    first = ContentFilter().mask_conversation(messages)
    again = ContentFilter().mask_conversation(messages)
    assert [m.text() for m in first.messages] == [m.text() for m in again.messages]
    answer = "I will mail <EMAIL_1> and call <PHONE_1>."
    assert first.vault.restore(answer) == again.vault.restore(answer)


def test_restore_is_exact() -> None:
    text = (
        f"联系 {PHONE} / {EMAIL} / 身份证 11010519491231002X / key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t"
    )
    result = ContentFilter().scan(text)
    vault = Vault()
    masked = ContentFilter().scan(text, vault=vault).masked_text
    assert result.masked_text == masked
    assert "13812345678" not in masked and "sk-proj" not in masked
    assert vault.restore(masked) == text


def test_multipart_content_is_masked_part_by_part() -> None:
    message = ChatMessage.model_validate(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": f"call {PHONE}"},
                {"type": "image_url", "image_url": {"url": "x"}},
            ],
        }
    )
    masked = ContentFilter().mask_conversation([message])
    content = masked.messages[0].content
    assert isinstance(content, list)
    assert content[0].text == "call <PHONE_1>"
    assert content[1].type == "image_url"


def test_an_injected_placeholder_is_reserved_and_never_resolved() -> None:
    masked = ContentFilter().mask_conversation(
        conversation(f"<PHONE_1> is not mine; mine is {PHONE}")
    )
    assert masked.messages[0].text() == "<PHONE_1> is not mine; mine is <PHONE_2>"
    assert masked.vault.resolve("<PHONE_1>") is None
    assert masked.vault.restore("<PHONE_1> / <PHONE_2>") == f"<PHONE_1> / {PHONE}"


def test_an_invented_or_foreign_placeholder_stays_as_it_is() -> None:
    ours = ContentFilter().mask_conversation(conversation(f"mine {PHONE}"))
    theirs = ContentFilter().mask_conversation(conversation("no personal data here"))
    answer = "Call <PHONE_1> or <PHONE_7> or <EMAIL_1>."
    assert theirs.vault.restore(answer) == answer  # issued elsewhere: not resolved here
    assert ours.vault.restore(answer) == f"Call {PHONE} or <PHONE_7> or <EMAIL_1>."


def test_stream_restore_is_exact_for_every_split_of_a_placeholder() -> None:
    vault = Vault()
    vault.placeholder("PHONE", PHONE, PHONE)
    vault.placeholder("EMAIL", EMAIL, EMAIL)
    answer = "号码<PHONE_1>，邮箱<EMAIL_1>；<PHONE_9> a<b <EMAIL_1>"
    expected = vault.restore(answer)
    for i in range(len(answer) + 1):
        for j in range(i, len(answer) + 1):
            restorer = StreamRestorer(vault)
            out = restorer.feed(answer[:i]) + restorer.feed(answer[i:j]) + restorer.feed(answer[j:])
            assert out + restorer.finish() == expected


def test_stream_restore_character_by_character_holds_back_only_partial_placeholders() -> None:
    vault = Vault()
    vault.placeholder("PHONE", PHONE, PHONE)
    restorer = StreamRestorer(vault)
    emitted = [restorer.feed(c) for c in "ok <PHONE_1>!"]
    assert emitted[:3] == ["o", "k", " "]
    assert emitted[3:11] == [""] * 8  # "<PHONE_1" is held
    assert emitted[11] == PHONE
    assert emitted[12] == "!"
    assert restorer.finish() == ""


def test_a_lone_angle_bracket_is_released_once_it_cannot_be_a_placeholder() -> None:
    restorer = StreamRestorer(Vault())
    assert restorer.feed("a <") == "a "
    assert restorer.feed(" b") == "< b"
    assert restorer.feed("<PHONE") == ""
    assert restorer.finish() == "<PHONE"
