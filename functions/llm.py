"""The one place litellm is imported, configured to run offline.

Importing litellm takes seconds, so it happens once, at start-up, when the
gateway's modules are first imported; never per request, and never in the node.
The environment variable must be set before the import: litellm reads it then.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the cost map

import litellm
from litellm.router_utils.router_callbacks import track_deployment_metrics

litellm.telemetry = False
litellm.suppress_debug_info = True
# litellm prints through its own plain-text stderr handlers; hand its records to the
# root logger instead, which functions.logs turns into the service's JSON lines.
for _name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
    logging.getLogger(_name).handlers.clear()
    logging.getLogger(_name).propagate = True

__all__ = ["litellm", "track_deployment_metrics"]
