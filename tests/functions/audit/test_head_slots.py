"""A directory's head lives in two slots, overwritten in place in turn.

What the slots must keep of the single head they replace: one sound head at every
moment (a crash that tears the slot being written leaves the other whole), and every
way of tampering with them seen by ``verify``: a slot torn or forged, one slot copied
over the other, a slot deleted. A head written before slots still reads, and its
chain goes on in slots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from functions.audit import AuditSettings, VerifyReport, load_keys, verify
from functions.audit.chain import ChainWriter
from functions.audit.store import head_path, newest_head, sign
from tests.functions.audit.conftest import DAYS, local, make_settings, request


def check(settings: AuditSettings) -> VerifyReport:
    keys = load_keys(settings, signing=False)
    return verify(local(settings), keys.public, keys.hmac)


def write(settings: AuditSettings, first: int, commits: int) -> None:
    """``commits`` commits of one record each, by a writer of chain ``gw``."""
    writer = ChainWriter(local(settings), "gw", load_keys(settings), False)
    try:
        for i in range(first, first + commits):
            writer.append([request(i, DAYS[0], content=False)])
    finally:
        writer.close()


def slot(settings: AuditSettings, number: int) -> Path:
    return head_path(settings.heads_dir, "gw", number)


def doc(settings: AuditSettings, number: int) -> dict[str, Any]:
    return dict(orjson.loads(slot(settings, number).read_bytes())["doc"])


def newer(settings: AuditSettings) -> int:
    return 0 if doc(settings, 0)["seq"] > doc(settings, 1)["seq"] else 1


def test_the_slots_take_turns_and_hold_the_last_two_heads(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    write(settings, 0, 5)
    seqs = sorted(doc(settings, n)["seq"] for n in (0, 1))
    assert seqs == [4, 5]
    assert [doc(settings, n)["slot"] for n in (0, 1)] == [0, 1]
    write(settings, 5, 1)  # a new writer resumes, and overwrites the older slot
    assert sorted(doc(settings, n)["seq"] for n in (0, 1)) == [5, 6]
    assert check(settings).ok


def test_a_torn_slot_leaves_the_other_whole_and_the_writer_goes_on(
    tmp_path: Path, errors: list[str]
) -> None:
    settings = make_settings(tmp_path)
    write(settings, 0, 4)
    torn = slot(settings, newer(settings))
    data = torn.read_bytes()
    torn.write_bytes(data[: len(data) // 2] + b"\0" * (len(data) - len(data) // 2))
    report = check(settings)
    assert report.kinds() == {"forged_head"}  # a crash, or tampering: named, not hidden
    assert "signature does not verify" in report.issues[0].detail
    assert [w.kind for w in report.warnings] == ["unsigned_tail"]  # checked by the other

    write(settings, 4, 1)  # resumes from the sound slot; overwrites the torn one first
    assert any("resuming from the sound head" in e for e in errors)
    report = check(settings)
    assert report.ok and not report.warnings, report.render()


def test_a_slot_copied_over_the_other_is_forged(tmp_path: Path) -> None:
    """Copying the older head over the newer would hide the last commit's removal."""
    settings = make_settings(tmp_path)
    write(settings, 0, 3)
    new = newer(settings)
    slot(settings, new).write_bytes(slot(settings, 1 - new).read_bytes())
    report = check(settings)
    assert report.kinds() == {"forged_head"}
    assert f"head slot {new} holds slot {1 - new}'s head" in report.issues[0].detail


def test_a_deleted_slot_is_a_missing_head(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    write(settings, 0, 3)
    slot(settings, newer(settings)).unlink()
    report = check(settings)
    assert "missing_head" in report.kinds()


def test_a_head_from_before_slots_reads_and_its_chain_goes_on_in_slots(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    write(settings, 0, 3)
    head = {k: v for k, v in doc(settings, newer(settings)).items() if k != "slot"}
    slot(settings, 1).unlink()
    slot(settings, 0).write_bytes(sign(load_keys(settings).signing, head))  # type: ignore[arg-type]
    assert check(settings).ok

    write(settings, 3, 1)
    assert sorted(doc(settings, n)["seq"] for n in (0, 1)) == [4, 4]  # both, the first time
    report = check(settings)
    assert report.ok and not report.warnings, report.render()
    slots = local(settings).head_slots()["gw"]
    head_now, faults = newest_head(slots, load_keys(settings).public, "gw")
    assert head_now is not None and head_now["seq"] == 4 and not faults


def test_a_slot_is_overwritten_in_place_padded_to_its_longest(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    write(settings, 0, 2)
    inode = slot(settings, 0).stat().st_ino
    write(settings, 2, 30)
    assert slot(settings, 0).stat().st_ino == inode  # no temporary file renamed over it
    raw = slot(settings, 0).read_bytes()
    assert orjson.loads(raw)["doc"]["seq"] in (31, 32)  # trailing blanks are JSON
