"""Routing: which deployments to try for a request, in what order — decided with litellm.

litellm's ``Router`` holds the model list built from Settings, the fallback chains,
the routing strategy among a model's deployments, and the cooldown state of each
deployment. It is not on the byte path for OpenAI-compatible upstreams: a full
``Router.acompletion`` costs milliseconds of CPU per call and per streamed chunk,
so the gateway relays those itself (:mod:`functions.relay`) and reports every
outcome back here, which keeps litellm's health state true. Providers that need
translation (Anthropic, Azure, …) go through litellm end to end.

litellm is configured to run offline in :mod:`functions.llm` and imported once,
at start-up.
"""

from __future__ import annotations

from functions import lifecycle, rbac
from functions.context import ChatContext, ChatStep
from functions.errors import ModelNotFoundError, NoDeploymentError, PermissionDeniedError
from functions.llm import litellm, track_deployment_metrics
from functions.settings import Deployment, GatewaySettings


def _litellm_params(d: Deployment) -> dict[str, object]:
    params: dict[str, object] = {
        "model": f"{d.provider}/{d.target_model}",
        "api_base": d.api_base,
        "timeout": d.timeout_s,
    }
    if d.api_key is not None:
        params["api_key"] = d.api_key.get_secret_value()
    elif d.is_openai_compatible:
        params["api_key"] = "none"  # self-hosted nodes take none; litellm insists on one
    return params


class DeploymentRouter:
    def __init__(self, settings: GatewaySettings) -> None:
        self._groups: dict[str, list[Deployment]] = {}
        for d in settings.deployments:
            self._groups.setdefault(d.model, []).append(d)
        self._fallbacks = settings.fallbacks
        self._by_name = {d.name: d for d in settings.deployments}
        self.litellm = litellm.Router(
            model_list=[
                {
                    "model_name": d.model,
                    "litellm_params": _litellm_params(d),
                    "model_info": {"id": d.name},
                }
                for d in settings.deployments
            ],
            fallbacks=[{k: v} for k, v in settings.fallbacks.items()],
            num_retries=0,  # failover goes straight to the next deployment, no backoff
            allowed_fails=settings.allowed_fails,
            cooldown_time=settings.cooldown_s,
            routing_strategy="simple-shuffle",
        )

    def models(self) -> list[str]:
        return list(self._groups)

    async def _cooling(self, names: list[str]) -> set[str]:
        active = await self.litellm.cooldown_cache.async_get_active_cooldowns(names, None)
        return {name for name, _ in active}

    async def _order_group(self, group: str) -> tuple[list[Deployment], list[Deployment]]:
        members = self._groups[group]
        cooling = await self._cooling([d.name for d in members])
        healthy = [d for d in members if d.name not in cooling]
        if len(healthy) > 1:
            pick = await self.litellm.async_get_available_deployment(model=group, request_kwargs={})
            first = self._by_name[pick["model_info"]["id"]]
            healthy.sort(key=lambda d: d is not first)
        return healthy, [d for d in members if d.name in cooling]

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
            ready, resting = await self._order_group(group)
            healthy += ready
            cooling += resting
        return (*healthy, *cooling)

    def record_success(self, deployment: Deployment) -> None:
        track_deployment_metrics.increment_deployment_successes_for_current_minute(
            litellm_router_instance=self.litellm, deployment_id=deployment.name
        )

    def record_failure(self, deployment: Deployment, status: int, reason: str) -> None:
        """Count a failed attempt; past ``allowed_fails`` a minute the deployment cools down."""
        error = litellm.ServiceUnavailableError(
            message=reason, llm_provider=deployment.provider, model=deployment.target_model
        )
        error.status_code = status
        self.litellm.deployment_callback_on_failure(
            kwargs={
                "exception": error,
                "litellm_params": {
                    "model_info": {"id": deployment.name},
                    "metadata": {"model_group": deployment.model},
                },
            },
            completion_response=None,
            start_time=None,
            end_time=None,
        )


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
