"""Invalid settings stop every ``enclave`` command with one line per mistake, never a traceback."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, child_env


def test_a_refused_setting_is_named_in_one_line() -> None:
    env = child_env(ENCLAVE_GATEWAY_CONTAINERS="3", ENCLAVE_NODE_PORT="not-a-port")
    done = subprocess.run(
        [sys.executable, "-m", "infra.cli", "keys", "list"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "enclave: the ENCLAVE_* settings are invalid:"
    assert any(line.startswith("  node.port: ") for line in lines)
