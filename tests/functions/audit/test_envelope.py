"""Content capture: off leaves no text anywhere; on, it round-trips; KEK rotation re-wraps."""

from __future__ import annotations

import base64
import io
import secrets
from pathlib import Path

import orjson
import pytest

from functions.audit import (
    AuditKeyError,
    AuditSettings,
    decrypt_content,
    load_keyring,
    load_keys,
    rotate_command,
    rotate_kek,
    verify_command,
)
from functions.audit.store import keys_path
from tests.functions.audit.conftest import (
    ANSWER,
    DAYS,
    PER_DAY,
    PROMPT,
    local,
    log_file,
    make_settings,
    read_lines,
    write_days,
)


@pytest.fixture
def captured(tmp_path: Path) -> AuditSettings:
    settings = make_settings(tmp_path, capture_content=True)
    write_days(settings)
    return settings


def all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_capture_off_writes_no_text_anywhere(audit: AuditSettings) -> None:
    stored = all_bytes(audit.directory.parent)
    assert PROMPT.encode() not in stored and ANSWER.encode() not in stored
    record = orjson.loads(read_lines(log_file(audit, DAYS[0], "gw-a"))[0])
    assert "content" not in record and "encrypted_content" not in record
    assert not list(audit.directory.rglob("*.keys.jsonl"))


def test_capture_round_trip(captured: AuditSettings) -> None:
    stored = all_bytes(captured.directory.parent)
    assert PROMPT.encode() not in stored and ANSWER.encode() not in stored
    keks = load_keys(captured).keks
    path = log_file(captured, DAYS[1], "gw-b")
    keyring = load_keyring(path)
    records = [orjson.loads(line) for line in read_lines(path)]
    assert len(keyring) == len(records) == PER_DAY
    for i, record in enumerate(records):
        assert record["encrypted_content"]["alg"] == "AES-256-GCM"
        content = decrypt_content(record, keyring[record["seq"]], keks)
        assert content == {
            "prompt": [{"role": "user", "content": f"{PROMPT} {i}"}],
            "answer": f"{ANSWER} {i}",
        }


def test_ciphertext_is_under_the_mac_and_bound_to_its_record(captured: AuditSettings) -> None:
    keks = load_keys(captured).keks
    path = log_file(captured, DAYS[0], "gw-a")
    keyring = load_keyring(path)
    first, second = (orjson.loads(line) for line in read_lines(path)[:2])
    with pytest.raises(AuditKeyError, match="fails authentication"):
        decrypt_content(first, keyring[second["seq"]], keks)  # another record's data key
    first["encrypted_content"]["ciphertext"] = second["encrypted_content"]["ciphertext"]
    lines = read_lines(path)
    lines[0] = orjson.dumps(first) + b"\n"
    path.write_bytes(b"".join(lines))
    out = io.StringIO()
    assert verify_command(captured, out) == 1
    assert f"edited        {DAYS[0]}/gw-a.jsonl line 1 seq 1" in out.getvalue()


def test_rotation_rewraps_without_touching_logs(captured: AuditSettings) -> None:
    old_keks = load_keys(captured).keks
    (old_id,) = old_keks
    logs = sorted(captured.directory.rglob("gw-*.jsonl"))
    logs = [p for p in logs if not p.name.endswith(".keys.jsonl")]
    before = {p: p.read_bytes() for p in logs}
    new_id, new_key = "kek-new", secrets.token_bytes(32)

    report = rotate_kek(local(captured), old_keks, (new_id, new_key))

    assert (report.files, report.rewrapped, report.unchanged) == (4, 4 * PER_DAY, 0)
    assert {p: p.read_bytes() for p in logs} == before  # ciphertexts and MACs byte-for-byte
    for path in logs:
        keyring = load_keyring(path)
        assert {k.kek_id for k in keyring.values()} == {new_id}
        record = orjson.loads(read_lines(path)[0])
        assert decrypt_content(record, keyring[record["seq"]], {new_id: new_key})["answer"]
        with pytest.raises(AuditKeyError, match="not configured"):
            decrypt_content(record, keyring[record["seq"]], old_keks)
    assert verify_command(captured, io.StringIO()) == 0
    again = rotate_kek(local(captured), {new_id: new_key}, (new_id, new_key))
    assert (again.rewrapped, again.unchanged) == (0, 4 * PER_DAY)
    assert old_id != new_id


def test_rotation_with_an_unknown_kek_leaves_the_sidecar(captured: AuditSettings) -> None:
    path = keys_path(log_file(captured, DAYS[0], "gw-a"))
    before = path.read_bytes()
    with pytest.raises(AuditKeyError):
        rotate_kek(local(captured), {}, ("kek-new", secrets.token_bytes(32)))
    assert path.read_bytes() == before


def test_rotate_command_moves_to_the_active_kek(captured: AuditSettings) -> None:
    new_key = base64.b64encode(secrets.token_bytes(32)).decode()
    rotated = captured.model_copy(
        update={"kek": {**captured.kek, "kek-2": new_key}, "active_kek": "kek-2"}
    )
    rotated = AuditSettings.model_validate(rotated.model_dump())
    out = io.StringIO()
    assert rotate_command(rotated, out) == 0, out.getvalue()
    assert f"{4 * PER_DAY} data key(s) re-wrapped with kek-2 in 4 file(s)" in out.getvalue()
    only_new = rotated.model_copy(update={"kek": {"kek-2": rotated.kek["kek-2"]}})
    keks = load_keys(only_new).keks
    path = log_file(captured, DAYS[1], "gw-a")
    record = orjson.loads(read_lines(path)[-1])
    assert decrypt_content(record, load_keyring(path)[record["seq"]], keks)["answer"]
    verified = io.StringIO()
    assert verify_command(only_new, verified) == 0, verified.getvalue()
    assert "3 chain(s)" in verified.getvalue()  # the rotation's own admin record
