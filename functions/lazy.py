"""Packages whose public names load on first use.

Settings nests each section's settings model, so a section's package is imported
wherever Settings is, the inference node included; its ``__init__`` must not load
the heavy modules beside it (LanceDB, the audit writer, JWKS fetching). Such a
package lists its names and their modules and sets ``__getattr__ = exports(...)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(
    package: str, names: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``names[name]`` from ``package`` once."""

    def __getattr__(name: str) -> object:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value  # the next lookup finds it without coming here
        return value

    return __getattr__
