"""Request classes: what a user waits for (``interactive``) and what nobody does (``background``).

A chat is ``interactive`` unless it says or shows otherwise:

- the header ``x-enclave-priority: interactive|background`` decides, from any key:
  asking for background lowers a request's own priority, and interactive is the
  default anyway, so neither needs a right. Any other value is a 400.
- without the header, a frontend's own bookkeeping is recognised by its prompt.
  Open WebUI (0.6 to 0.12) sends its tasks as ordinary chat completions whose last
  user message is a template starting ``### Task:``; its OpenAI router removes the
  ``metadata`` (where the task's name lives) before sending, so the template is all
  there is to go by. Titles, tags, follow-up suggestions and emoji replies are
  background: the user's answer is already on screen. Search-query generation,
  autocompletion and image prompts are recognised too but stay interactive, since
  the user's answer (or typing) waits for them. Templates an operator customised in
  Open WebUI are not recognised; only the first :data:`SCAN_CHARS` characters of
  the message are looked at.

What a class changes:

- a recognised task, or any background request, retrieves nothing from an alias's
  collections (it is about the chat, not the documents); collections a request
  names itself (``enclave.collections``) are still searched;
- a background request goes to the ``background_model`` of its alias, or of its
  model (``ENCLAVE_GATEWAY_BACKGROUND_MODELS``), when one is set and the key may use
  it; that model's fallbacks apply as usual;
- the gateway tells self-hosted node deployments the class in its own
  ``x-enclave-priority`` header (never the caller's), and the node serves
  interactive requests first;
- the class is a decision (``priority``) in the log line and the audit record, and
  a bounded label of ``enclave_gateway_chat_classes_total``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter
from starlette.datastructures import Headers

from functions import rbac
from functions.context import ChatContext, ChatStep
from functions.errors import InvalidRequestError
from functions.settings import GatewaySettings
from functions.wire import ChatCompletionRequest

Priority = Literal["interactive", "background"]
PRIORITY_HEADER = "x-enclave-priority"
PRIORITIES: tuple[Priority, ...] = ("interactive", "background")
SCAN_CHARS = 400  # of the last user message: a template's opening is well within it

# Open WebUI's default task templates: (what follows "### Task:", task, class)
OPENWEBUI_TASKS: tuple[tuple[str, str, Priority], ...] = (
    ("Generate a concise, 3-5 word title", "title", "background"),
    ("Generate 1-3 broad tags", "tags", "background"),
    ("Suggest 3-5 relevant follow-up questions", "follow_ups", "background"),
    ("Analyze the chat history to determine the necessity of generating search queries",
     "queries", "interactive"),
    ("You are an autocompletion system", "autocomplete", "interactive"),
    ("Generate a detailed prompt for am image generation task", "image_prompt", "interactive"),
)  # fmt: skip
# the emoji template has no "### Task:" heading
OPENWEBUI_EMOJI = "Your task is to reflect the speaker's likely facial expression"


@dataclass(frozen=True, slots=True)
class Classification:
    priority: Priority
    reason: str  # "default", "header", or "openwebui:<task>"
    task: str | None = None  # the frontend task recognised, if any


def _header(headers: Headers) -> Priority | None:
    values = headers.getlist(PRIORITY_HEADER)
    if not values:
        return None
    value = values[0].strip().lower()
    if len(values) > 1 or value not in PRIORITIES:
        raise InvalidRequestError(
            f"Invalid {PRIORITY_HEADER} header: send it once, as interactive or background.",
            param=PRIORITY_HEADER,
        )
    return "background" if value == "background" else "interactive"


def openwebui_task(body: ChatCompletionRequest) -> tuple[str, Priority] | None:
    """The Open WebUI task a request's last user message is the template of, if any."""
    last = next((m for m in reversed(body.messages) if m.role == "user"), None)
    if last is None:
        return None
    head = last.text()[:SCAN_CHARS].lstrip()
    if head.startswith(OPENWEBUI_EMOJI):
        return "emoji", "background"
    if not head.startswith("### Task:"):
        return None
    for opening, task, priority in OPENWEBUI_TASKS:
        if opening in head:
            return task, priority
    return None


def classify(headers: Headers, body: ChatCompletionRequest) -> Classification:
    """The request's class: the caller's header, else a recognised task's, else interactive."""
    asked = _header(headers)
    found = openwebui_task(body)
    task = found[0] if found is not None else None
    if asked is not None:
        return Classification(asked, "header", task)
    if found is not None:
        return Classification(found[1], f"openwebui:{found[0]}", task)
    return Classification("interactive", "default")


class ClassMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.chats = Counter(
            "enclave_gateway_chat_classes",
            "Chat requests by class and by the frontend task recognised (none: a chat)",
            ["priority", "task"],
            registry=registry,
        )
        for priority in PRIORITIES:
            self.chats.labels(priority, "none")

    def count(self, found: Classification) -> None:
        self.chats.labels(found.priority, found.task or "none").inc()


def background_models(settings: GatewaySettings) -> dict[str, str]:
    """Public model or alias name -> the model its background requests go to."""
    targets = dict(settings.background_models)
    for name, alias in settings.aliases.items():
        target = alias.background_model or settings.background_models.get(alias.model)
        if target is not None:
            targets[name] = target
    return targets


def make_classify(
    aliases: Mapping[str, str], background: Mapping[str, str], metrics: ClassMetrics | None = None
) -> ChatStep:
    """The chat step that classes a request; ``aliases`` maps an alias to its model."""

    async def classify_step(ctx: ChatContext) -> ChatContext:
        found = classify(ctx.headers, ctx.body)
        if metrics is not None:
            metrics.count(found)
        body, decisions = ctx.body, dict(ctx.decisions)
        named = body.enclave is not None and bool(body.enclave.collections)
        bookkeeping = found.task is not None or found.priority == "background"
        if bookkeeping and body.model in aliases and not named:
            # the alias's collections are not searched for a title or a tag
            body = body.model_copy(update={"model": aliases[body.model]})
            decisions["retrieval"] = f"skipped ({found.reason})"
        verdict = f"{found.priority} ({found.reason})"
        target = background.get(ctx.body.model) if found.priority == "background" else None
        if target is not None and rbac.may_use_model(ctx.principal, target):
            body = body.model_copy(update={"model": target})
            verdict += f" -> {target}"
        decisions["priority"] = verdict
        return ctx.evolve(body=body, priority=found.priority, decisions=decisions)

    return classify_step
