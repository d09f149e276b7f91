"""The output guard holds back only the live tail, and streaming changes nothing it decides.

The property: however an answer is cut into chunks (anywhere, one character at a
time included), guarding it chunk by chunk releases the same text, redacts the same
spans, reports the same detections at the same offsets and blocks on the same finding
as guarding the whole answer at once. The answers mix English and Chinese prose,
lexicon terms (the shipped samples and a test file: terms nested in terms, ASCII terms
with word boundaries, ``re:`` rules), personal data in the shapes people write it
(``+86 138-1234-5678``, a spaced card, a PRC ID, emails, keys, a private key block),
zero-width and full-width characters, and placeholders the restorer resolves.
"""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from functions.filtering import ContentBlockedError, ContentFilter, FilterPolicy
from functions.filtering.normalise import normalise
from functions.filtering.output import OutputGuard, OutputStream
from functions.filtering.results import Detection
from functions.wire import ChatMessage

SYSTEM = "You are Acme's support bot. Never mention the discount code WINTER-SALE-2024 to anyone."
LEXICON = "\n".join(
    [
        "falcon\tflag\tcodeword",
        "project falcon\tmask\tcodeword",
        "falcon 9 launch\tmask\tcodeword",
        "内部\tflag\tinternal",
        "内部资料库\tmask\tinternal",
        "红色预案\tblock\tclassified",
        "crimson tide\tblock\tclassified",
        "re:ticket[:#]?\\s*\\d{4,6}\tmask\tticket",
    ]
)

WORDS = [
    *[
        "Hello",
        "there",
        ",",
        "the",
        "report",
        "is",
        "ready",
        ".",
        "Please",
        "call",
        "me",
        "at",
        "my",
        "card",
        "number",
        "version",
        "tel",
    ],
    *[
        "password",
        "token",
        "bearer",
        "mrn",
        "employee",
        "id",
        "ex",
        "face",
        "e",
        "g",
        "sk",
        "ey",
        "falcon",
        "project",
        "launch",
    ],
    *["你好", "这是", "报告", "请联系", "电话", "我的卡号", "，", "。", "工号", "密码是", "护照"],
    *["内部", "资料", "红色", "预案", "crimson", "tide", "ticket"],
]
PII = [
    "13812345678",
    "138 1234 5678",
    "+86 138-1234-5678",
    "+86 13912345678",
    "１３８\u200b1234 5678",
    "li.lei@example.com",
    "help.desk@mail.example.co.uk",
    "11010519491231002X",
    "4111 1111 1111 1111",
    "4111111111111111",
    "123-45-6789",
    "010-62345678",
    "(010) 6234 5678",
    "E12345678",
    "192.168.10.24",
    "2001:db8::8a2e:370:7334",
    "sk-proj-abcdefghijklmnopqrstuvwx",
    "AKIAIOSFODNN7EXAMPLE",
    "Bearer abcdefghijklmnopqrstuvwxyz012345",
    "password: Xy7pQ9zK",
    "密码是Ab3dEf9x",
    "-----BEGIN RSA PRIVATE KEY-----\nQUJDRA==\n-----END RSA PRIVATE KEY-----",
    "mrn: 12345678",
    "工号 123456",
    "ticket #48213",
]
TERMS = ["project falcon", "falcon 9 launch", "falcon", "内部资料库", "内部", "绝密", "top secret"]
TERMS += ["internal use only", "project bluebird", "红色预案", "crimson tide"]
PLACEHOLDERS = ["<PHONE_1>", "<EMAIL_1>", "<PHONE_3>", "<PHO", "<", "a<b", "<<PHONE_1>>"]
GLUE = ["", " ", " ", "\n", "，", ", ", ". ", "\u200b", "：", "-", "x"]

pieces = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from(PII),
    st.sampled_from(TERMS),
    st.sampled_from(PLACEHOLDERS),
)
answers = st.lists(st.tuples(pieces, st.sampled_from(GLUE)), min_size=1, max_size=14).map(
    lambda parts: "".join(piece + glue for piece, glue in parts)
)


@st.composite
def chunked(draw: st.DrawFn) -> tuple[str, list[str]]:
    """An answer and a chunking of it: cut anywhere, or one character per chunk."""
    text = draw(answers)
    if draw(st.booleans()) and len(text) < 120:
        return text, list(text)
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=len(text))))
    bounds = [0, *[c for c in cuts if c < len(text)], len(text)]
    return text, [text[a:b] for a, b in itertools.pairwise(bounds)]


PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)


@pytest.fixture(scope="module")
def lexicon(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("lexicon") / "test.txt"
    path.write_text(LEXICON, encoding="utf-8")
    return str(path)


def _filter(lexicon: str, **policy: object) -> ContentFilter:
    lexicons = ("builtin:zh", "builtin:en", lexicon)
    return ContentFilter(FilterPolicy.model_validate({"lexicons": lexicons, **policy}))


@pytest.fixture(scope="module")
def blocking(lexicon: str) -> ContentFilter:
    return _filter(lexicon)  # the defaults: secrets and some terms block, the rest masks


@pytest.fixture(scope="module")
def masking(lexicon: str) -> ContentFilter:
    # nothing blocks: every chunking must run to the end and release the same text
    return _filter(lexicon, output_entities={"SECRET": "mask"})


Outcome = tuple[str, list[Detection], bool]


def guarded(guard: OutputGuard | OutputStream, chunks: list[str]) -> Outcome:
    """What was released, what was found, and whether the answer was stopped."""
    released = []
    try:
        for chunk in chunks:
            released.append(guard.feed(chunk))
        released.append(guard.finish())
    except ContentBlockedError:
        return "".join(released), guard.detections, True
    return "".join(released), guard.detections, False


def assert_equivalent(streamed: Outcome, whole: Outcome, chunks: list[str]) -> None:
    note(f"chunks: {chunks!r}")
    text, detections, blocked = streamed
    assert detections == whole[1]
    assert blocked == whole[2]
    if not blocked:
        assert text == whole[0]


@PROPERTY
@given(case=chunked())
def test_streaming_masks_exactly_as_the_whole_answer(
    masking: ContentFilter, case: tuple[str, list[str]]
) -> None:
    text, chunks = case
    whole = guarded(masking.output_guard(), [text])
    assert_equivalent(guarded(masking.output_guard(), chunks), whole, chunks)


@PROPERTY
@given(case=chunked())
def test_streaming_blocks_on_the_same_finding_as_the_whole_answer(
    blocking: ContentFilter, case: tuple[str, list[str]]
) -> None:
    text, chunks = case
    whole = guarded(blocking.output_guard(), [text])
    streamed = guarded(blocking.output_guard(), chunks)
    assert_equivalent(streamed, whole, chunks)
    if streamed[2]:  # what was released before the block is what the whole answer redacts
        stop = whole[1][-1].start
        assert streamed[0] == guarded(blocking.output_guard(), [text[:stop]])[0][: len(streamed[0])]


@PROPERTY
@given(case=chunked())
def test_guard_then_restore_streams_as_the_whole_answer(
    masking: ContentFilter, case: tuple[str, list[str]]
) -> None:
    conversation = masking.mask_conversation(
        [ChatMessage(role="user", content="我的手机13812345678，邮箱li.lei@example.com")]
    )
    text, chunks = case
    whole = guarded(masking.output_stream(conversation), [text])
    assert_equivalent(guarded(masking.output_stream(conversation), chunks), whole, chunks)
    assert "<PHONE_1>" not in whole[0] and "<EMAIL_1>" not in whole[0]  # both restored


_SQUASH = re.compile(r"[\W_]+")


@PROPERTY
@given(case=chunked(), leak=st.sampled_from(["", "never mention the discount code winter "]))
def test_a_leak_stops_the_stream_and_no_run_of_the_prompt_is_released(
    masking: ContentFilter, case: tuple[str, list[str]], leak: str
) -> None:
    text, chunks = case
    text, chunks = leak + text, [leak, *chunks] if leak else chunks
    whole = guarded(masking.output_guard(SYSTEM), [text])
    streamed = guarded(masking.output_guard(SYSTEM), chunks)
    assert streamed[2] == whole[2]
    if not streamed[2]:
        assert streamed == whole
        return
    prompt = _SQUASH.sub("", normalise(SYSTEM).text)
    released = _SQUASH.sub("", normalise(streamed[0]).text)
    n = 24
    assert not any(released[i : i + n] in prompt for i in range(len(released) - n + 1))


def test_prose_is_released_with_the_chunk_that_completes_it(masking: ContentFilter) -> None:
    g = masking.output_guard()
    assert g.feed("Hello there, ") == "Hello there, "
    assert g.feed("how are") == "how "  # "are" could still grow (are@example.com)
    assert g.feed(" you?") == "are you?"
    assert g.feed("这是一个普通的回答，没有数字。") == "这是一个普通的回答，没有数字。"
    assert g.held == 0 and g.finish() == ""


def test_a_phone_number_split_over_five_chunks_is_masked_exactly(masking: ContentFilter) -> None:
    g = masking.output_guard()
    chunks = ["请拨打 +86 138", "-12", "34 5", "6", "78，谢谢"]
    released = [g.feed(chunk) for chunk in chunks]
    assert released[:4] == ["请拨打 ", "", "", ""]  # nothing of the number before it is whole
    assert "".join(released) + g.finish() == "请拨打 [REDACTED:PHONE]，谢谢"
    assert [(d.type, d.start, d.end) for d in g.detections] == [("PHONE", 4, 21)]


def test_a_lexicon_term_split_across_chunks_is_masked(masking: ContentFilter) -> None:
    g = masking.output_guard()
    assert g.feed("We start project blue") == "We start "
    assert g.feed("bird today, ") == "[REDACTED:CODEWORD] today, "


def test_a_blocked_term_split_across_chunks_is_never_released(blocking: ContentFilter) -> None:
    g = blocking.output_guard()
    assert g.feed("这份文件是红色") == "这份文件是"
    with pytest.raises(ContentBlockedError):
        g.feed("预案级别")
    assert g.detections[-1].type == "CLASSIFIED"


def test_the_restorer_holds_only_a_placeholder_that_may_still_complete(
    masking: ContentFilter,
) -> None:
    conversation = masking.mask_conversation(
        [ChatMessage(role="user", content="我的手机13812345678")]
    )
    stream = masking.output_stream(conversation)
    assert stream.feed("已记录 <PH") == "已记录 "
    assert stream.feed("ONE_1>。x < y。") == "13812345678。x < y。"
    assert stream.feed("<1 and <P") == "<1 and "


def test_a_rule_is_live_from_its_literal_prefix_for_hold_back_chars(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    path = tmp_path_factory.mktemp("rules") / "rules.txt"
    path.write_text("re:case\\s*#?\\s*\\d{4,6}\tmask\tcase\n", encoding="utf-8")
    g = ContentFilter(FilterPolicy(lexicons=(str(path),), hold_back_chars=16)).output_guard()
    assert g.feed("Open ca") == "Open "
    assert g.feed("se # ") == ""  # the rule may still match: held from its literal
    assert g.feed("12345 today, ") == "[REDACTED:CASE] today, "
    assert g.feed("and then some more words, ") == "and then some more words, "


def test_a_rule_without_a_literal_prefix_keeps_the_fixed_window(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    path = tmp_path_factory.mktemp("rules") / "rules.txt"
    path.write_text("re:[a-z]{2}-\\d{6}\tmask\tcase\n", encoding="utf-8")
    g = ContentFilter(FilterPolicy(lexicons=(str(path),), hold_back_chars=16)).output_guard()
    text = "Hello there, this is prose, "
    assert g.feed(text) == text[: len(text) - 16]
    assert g.held == 16


def test_a_term_longer_than_the_window_is_held_beside_a_windowed_rule(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Found in review: with a rule that keeps the fixed window, a lexicon term longer than
    that window used to leave in clear when a chunk ended inside it."""
    term = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo"
    path = tmp_path_factory.mktemp("rules") / "rules.txt"
    path.write_text(f"re:\\d{{3}}zz\tmask\tcode\n{term}\tmask\tlong\n", encoding="utf-8")
    policy = FilterPolicy(lexicons=(str(path),), hold_back_chars=32)
    text = f"note: {term} end."
    whole = guarded(ContentFilter(policy).output_guard(), [text])
    assert "[REDACTED:LONG]" in whole[0]
    for cut in range(1, len(text)):
        chunks = [text[:cut], text[cut:]]
        assert guarded(ContentFilter(policy).output_guard(), chunks) == whole, chunks


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: bearer" + "\n" * 400 + "abcdefghijklmnopqrstuvwxyz012345 ok",
        "password" + " " * 400 + ": Hunter22Secret! ok",
        "Authorization: bearer" + "\n" * 30 + "abcdefghijklmnopqrstuvwxyz012345 ok",
        "password" + " " * 30 + ": Hunter22Secret! ok",
    ],
)
def test_a_key_word_far_from_its_value_streams_as_the_whole_answer(
    masking: ContentFilter, text: str
) -> None:
    """Found in review: whitespace between a key word and its value was unbounded in the
    detectors but not in the live tail, so a value 400 newlines away left in clear."""
    whole = guarded(masking.output_guard(), [text])
    for cut in range(len(text) - 40, len(text)):
        chunks = [text[:cut], text[cut:]]
        assert guarded(masking.output_guard(), chunks) == whole, chunks
    if "\n" * 400 not in text and " " * 400 not in text:
        assert "[REDACTED:SECRET]" in whole[0]  # near its key word: found, streamed or not


# Names and addresses on output (allowed by default: not looked for). An operator who
# masks them gets a fixed live tail (tail.PROSE_WINDOW): the same property holds.
PROSE_PII = [
    "患者王伟",
    "王伟先生",
    "联系人：欧阳娜娜",
    "李明和王芳",
    "Dear John",
    "Mr. Smith",
    "Patient Mary Johnson",
    "北京市朝阳区建国路88号",
    "广东省深圳市南山区科技园路88号腾讯大厦5栋1201室",
    "12 Main St., Springfield, IL 62704",
    "PO Box 1234",
    "高兴",
    "Will",
    "Street",
]
prose_answers = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(WORDS), st.sampled_from(PROSE_PII), st.sampled_from(PII)),
        st.sampled_from(GLUE),
    ),
    min_size=1,
    max_size=14,
).map(lambda parts: "".join(piece + glue for piece, glue in parts))


@st.composite
def prose_chunked(draw: st.DrawFn) -> tuple[str, list[str]]:
    text = draw(prose_answers)
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=len(text))))
    bounds = [0, *[c for c in cuts if c < len(text)], len(text)]
    return text, [text[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.fixture(scope="module")
def naming(lexicon: str) -> ContentFilter:
    entities = {"SECRET": "mask", "PERSON": "mask", "ADDRESS": "mask"}
    return _filter(lexicon, output_entities=entities)


@PROPERTY
@given(case=prose_chunked())
def test_streaming_masks_names_and_addresses_as_the_whole_answer(
    naming: ContentFilter, case: tuple[str, list[str]]
) -> None:
    text, chunks = case
    whole = guarded(naming.output_guard(), [text])
    assert_equivalent(guarded(naming.output_guard(), chunks), whole, chunks)


def test_names_in_answers_are_not_held_back_by_default(masking: ContentFilter) -> None:
    guard = masking.output_guard()
    assert guard.feed("王伟先生说，Dear John, see you. ") == "王伟先生说，Dear John, see you. "
