"""Context-window management: fit each conversation into the model's context.

settings   the policy (truncate or error), the answer's reserve, the margin
fit        the estimate, turns, and dropping the oldest of them (pure)
lengths    each deployment's context length: its setting, else its /v1/models
steps      the chat step, and one retry when the model still refuses
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.lazy import exports

if TYPE_CHECKING:
    from functions.window.fit import Window, fit
    from functions.window.lengths import ContextLengths
    from functions.window.settings import Policy, WindowSettings
    from functions.window.steps import make_window, refit

# Settings holds a WindowSettings, so this package is imported wherever Settings is:
# its other modules (which import Settings) load on first use
_LAZY = {
    "Window": "fit",
    "fit": "fit",
    "ContextLengths": "lengths",
    "Policy": "settings",
    "WindowSettings": "settings",
    "make_window": "steps",
    "refit": "steps",
}

__getattr__ = exports(__name__, _LAZY, globals())

__all__ = ["ContextLengths", "Policy", "Window", "WindowSettings", "fit", "make_window", "refit"]
