"""What the node's routes share: the engine once loaded (or why not), the admission queue,
the sampling defaults, and the bookkeeping every chat request ends with.

Why a module of its own: the chat route's answers (:mod:`.answers`: one JSON completion,
or an SSE stream) end a request as the route itself does when it fails before them:
the slot released, the status and latency observed, the tokens counted. Both need the
state; here it is importable by the app (:mod:`.server`) and the answers alike.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from starlette.requests import Request

from functions.bearer import check_key
from functions.errors import ServiceUnavailableError
from functions.metrics import Metrics
from functions.settings import Settings
from inference_node.admission import Admission
from inference_node.engine import Engine, Piece
from inference_node.sampling import SamplingDefaults, layers_of, resolve, settings_layer

ROUTE = "/v1/chat/completions"


@dataclass
class NodeState:
    """What the routes share: the engine once loaded, or why it is not."""

    settings: Settings
    metrics: Metrics
    admission: Admission
    sampling: SamplingDefaults  # for requests that leave a parameter unset
    engine: Engine | None = None
    load_error: str | None = None
    loader: asyncio.Task[None] | None = field(default=None, repr=False)

    def attach(self, engine: Engine) -> None:
        """Serve ``engine``; sample by default as the settings, else its weights, recommend."""
        self.sampling = resolve(settings_layer(self.settings.node), *layers_of(engine))
        self.engine = engine

    def authorise(self, request: Request) -> None:
        key = self.settings.node.api_key
        if key is not None:
            check_key(request.headers, key.get_secret_value().encode())

    def ready_engine(self) -> Engine:
        if self.engine is None:
            reason = self.load_error or "The model is still loading."
            raise ServiceUnavailableError(reason, headers={"retry-after": "2"})
        return self.engine

    def count_tokens(self, engine: Engine, piece: Piece) -> None:
        """Count a finished generation's tokens (``piece``: its last, with the usage)."""
        tokens = self.metrics.tokens
        tokens.labels(engine.model_id, "", "in").inc(piece.prompt_tokens or 0)
        tokens.labels(engine.model_id, "", "out").inc(piece.completion_tokens or 0)

    def observe(self, model: str, status: str, started: float) -> None:
        """Record one chat request's outcome and its latency from ``started``."""
        self.metrics.requests.labels(ROUTE, model, "", status).inc()
        self.metrics.latency.labels(ROUTE, model).observe(time.perf_counter() - started)
