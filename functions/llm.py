"""The one place litellm is imported, configured to run offline.

Importing litellm takes seconds and over 200 MiB, and only a deployment that
needs translation (``via: litellm``, or a provider other than ``openai``) uses
it, so nothing imports this module's :func:`load` at start-up: the relay calls
it in a worker thread (:class:`functions.lazy.Background`), started with the
gateway when a deployment needs it. Never per request, and never in the node.
The environment variable must be set before the import: litellm reads it then.
"""

from __future__ import annotations

import logging
import os
from types import ModuleType


def load() -> ModuleType:
    """litellm, imported (once: later calls find it in ``sys.modules``) and configured."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the cost map
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    # litellm prints through its own plain-text stderr handlers; hand its records to the
    # root logger instead, which functions.logs turns into the service's JSON lines.
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    return litellm
