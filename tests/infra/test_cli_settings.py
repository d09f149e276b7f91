"""Invalid settings stop every ``enclave`` command with one line per mistake, never a traceback."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import enclave_cli


def test_a_refused_setting_is_named_in_one_line(tmp_path: Path) -> None:
    done = enclave_cli(
        tmp_path / "data",
        *("keys", "list"),
        ENCLAVE_GATEWAY_CONTAINERS="3",
        ENCLAVE_NODE_PORT="not-a-port",
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "enclave: the ENCLAVE_* settings are invalid:"
    assert any(line.startswith("  node.port: ") for line in lines)
