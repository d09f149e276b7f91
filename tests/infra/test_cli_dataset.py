"""The export's pieces: which answers count as liked, which captures become training
lines, and what it says when content capture is off. The export of a real audit log
is in tests/security/test_experiments.py."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from functions.filtering.engine import FilterSet
from functions.filtering.policy import FilterPolicy
from functions.settings import Settings
from infra.cli_dataset import conversation, export, liked, masked, run


def test_liked_needs_every_rating_to_reach_the_minimum() -> None:
    ratings = [("t", "r1", 1), ("t", "r1", 1), ("t", "r2", 1), ("t", "r2", -1), ("u", "r1", -1)]
    assert liked(ratings, 1) == {("t", "r1")}
    assert liked(ratings, -1) == {("t", "r1"), ("t", "r2"), ("u", "r1")}


def test_captures_become_chat_messages() -> None:
    prompt = [
        {"role": "developer", "content": "Be brief."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}],
        },
    ]
    assert conversation({"prompt": prompt, "answer": "Hello"}) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello"},
    ]


def test_what_is_not_plain_text_is_left_out() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    for prompt, answer in (
        ([{"role": "user", "content": [image]}], "A cat"),
        ([{"role": "tool", "content": "42", "tool_call_id": "c1"}], "42"),
        ([{"role": "user", "content": "hi"}], None),
        ([{"role": "user", "content": "hi"}], ""),
        ([{"role": "nobody", "content": "hi"}], "x"),
        ("not a list", "x"),
    ):
        assert conversation({"prompt": prompt, "answer": answer}) is None
    assert conversation(None) is None


def test_masking_shares_one_vault_across_the_conversation() -> None:
    messages = [
        {"role": "user", "content": "Mail jane.roe@example.org or 13812345678"},
        {"role": "assistant", "content": "I will mail jane.roe@example.org"},
    ]
    safe = masked(FilterSet(FilterPolicy()), "default", messages)
    assert safe == [
        {"role": "user", "content": "Mail <EMAIL_1> or <PHONE_1>"},
        {"role": "assistant", "content": "I will mail <EMAIL_1>"},
    ]


def test_capture_off_is_said_plainly(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    args = argparse.Namespace(min_rating=1, tenant=None, since=None, out=tmp_path / "out.jsonl")
    out = io.StringIO()
    assert export(settings, args, out) == 2
    assert "content capture is off (ENCLAVE_AUDIT_CAPTURE_CONTENT=false)" in out.getvalue()
    assert (tmp_path / "out.jsonl").read_text() == ""


def test_an_out_it_cannot_write_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    for out in (tmp_path / "missing" / "out.jsonl", tmp_path):  # no folder; a folder
        args = argparse.Namespace(min_rating=1, tenant=None, since=None, out=out)
        assert run(args, settings, io.StringIO()) == 1
        error = capsys.readouterr().err
        assert error.startswith(f"enclave: cannot write {out}: ") and error.count("\n") == 1
