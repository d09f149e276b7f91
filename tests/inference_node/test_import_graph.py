"""The node's import graph stays small: importing its server loads no gateway machinery.

Checked in a fresh interpreter, so nothing another test imported can hide a leak.
Settings holds every section, so each package's *settings* module is imported with
it (``functions.knowledge.settings``, ``functions.oidc.settings``,
``functions.audit.settings``); nothing else of those packages may be.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# what only the gateway needs: vector store, provider translation, JWT verification,
# key store and the request pipeline
ABSENT = [
    "lancedb",
    "pyarrow",
    "litellm",
    "openai",
    "functions.knowledge.store",
    "functions.oidc.verifier",
    "functions.oidc.jwks",
    "functions.auth",
    "functions.context",
    "functions.keys",
]
# what a package may bring along with its settings section: the audit package's own
# errors, and ``verify``/``prune`` (imported eagerly because they share their modules'
# names), which read files and check MACs; never the writer, the chain or the commands
LIGHT = {
    "functions.audit": ("settings", "errors", "verify", "prune", "store", "records"),
}
SECTIONS = [
    pytest.param("functions.knowledge", id="knowledge"),
    pytest.param("functions.oidc", id="oidc"),
    pytest.param("functions.audit", id="audit"),
]


@pytest.fixture(scope="module")
def loaded() -> frozenset[str]:
    code = "import json, sys, inference_node.server; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return frozenset(json.loads(result.stdout))


@pytest.mark.parametrize(
    "module",
    [
        *ABSENT,
        "functions.audit.writer",
        "functions.audit.chain",
        "functions.audit.commands",
        "functions.audit.envelope",
    ],
)
def test_the_node_does_not_import(loaded: frozenset[str], module: str) -> None:
    assert module not in loaded


@pytest.mark.parametrize("package", SECTIONS)
def test_of_a_gateway_package_only_its_settings_section_is_imported(
    loaded: frozenset[str], package: str
) -> None:
    imported = {name for name in loaded if name.startswith(package + ".")}
    assert imported <= {f"{package}.{module}" for module in LIGHT.get(package, ("settings",))}
