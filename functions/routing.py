"""Routing: which deployments to try for a request, in what order.

A model's deployments that are not resting (:mod:`functions.cooldowns`) come
first, one of them picked at random to lead (a plain shuffle: no weights), then
the resting ones as a last resort; then the same for each fallback model, in the
order Settings lists them. Every attempt's outcome is reported back here, so a
deployment that keeps failing moves to the end.

This used litellm's ``Router`` once. Its import alone takes seconds and over
200 MiB, and every gateway process paid that at start-up just to keep cooldowns,
so a scale-to-zero gateway's cold start was the caller's wait. litellm is now
imported only to translate for a deployment with ``via: litellm`` or a provider
other than ``openai`` (:mod:`functions.relay`).
"""

from __future__ import annotations

import random

from functions import lifecycle, rbac
from functions.context import ChatContext, ChatStep
from functions.cooldowns import Cooldowns
from functions.errors import ModelNotFoundError, NoDeploymentError, PermissionDeniedError
from functions.settings import Deployment, GatewaySettings


class DeploymentRouter:
    def __init__(self, settings: GatewaySettings) -> None:
        self._groups: dict[str, list[Deployment]] = {}
        for d in settings.deployments:
            self._groups.setdefault(d.model, []).append(d)
        self._fallbacks = settings.fallbacks
        self.cooldowns = Cooldowns(settings.allowed_fails, settings.cooldown_s)

    def models(self) -> list[str]:
        return list(self._groups)

    def _order_group(self, group: str) -> tuple[list[Deployment], list[Deployment]]:
        members = self._groups[group]
        resting = self.cooldowns.resting(d.name for d in members)
        healthy = [d for d in members if d.name not in resting]
        if len(healthy) > 1:
            first = random.choice(healthy)  # spreads load; nothing to guess or protect
            healthy.sort(key=lambda d: d is not first)
        return healthy, [d for d in members if d.name in resting]

    async def plan(self, model: str) -> tuple[Deployment, ...]:
        """Deployments to try: the model's, then each fallback model's; healthy ones first.

        Deployments in cooldown are kept at the end as a last resort, so a lone
        node that failed once is still tried rather than refused outright.
        """
        if model not in self._groups:
            raise ModelNotFoundError(
                f"The model `{model}` does not exist or you do not have access to it.",
                param="model",
            )
        healthy: list[Deployment] = []
        cooling: list[Deployment] = []
        for group in (model, *self._fallbacks.get(model, ())):
            ready, resting = self._order_group(group)
            healthy += ready
            cooling += resting
        return (*healthy, *cooling)

    def attempt_started(self) -> float:
        """A stamp to hand back to :meth:`record_success` when the attempt answers."""
        return self.cooldowns.now()

    def record_success(self, deployment: Deployment, started: float | None = None) -> None:
        """An answer to an attempt begun at ``started`` (:meth:`attempt_started`)."""
        self.cooldowns.succeeded(deployment.name, started)

    def record_failure(self, deployment: Deployment, rate_limited: bool = False) -> None:
        """Count a failed attempt; past ``allowed_fails`` a minute, or at once on a 429
        (``rate_limited``), the deployment cools down.

        Only the deployment's own faults come here (refused, timed out, 5xx, 429):
        a request the upstream rejected as invalid is the caller's fault (I9).
        """
        self.cooldowns.failed(deployment.name, rate_limited)


def make_route(router: DeploymentRouter) -> ChatStep:
    async def route(ctx: ChatContext) -> ChatContext:
        if not rbac.may_use_model(ctx.principal, ctx.body.model):
            if ctx.body.model not in router.models():
                raise ModelNotFoundError(
                    f"The model `{ctx.body.model}` does not exist or you do not have access to it.",
                    param="model",
                )
            raise PermissionDeniedError(
                f"This key may not use the model `{ctx.body.model}`.", param="model"
            )
        lifecycle.call().model = ctx.body.model  # a model this gateway serves: a bounded label
        plan = await router.plan(ctx.body.model)
        if not plan:
            raise NoDeploymentError(f"No deployment can serve `{ctx.body.model}` now.")
        return ctx.decided("route", ",".join(d.name for d in plan), plan=plan)

    return route
