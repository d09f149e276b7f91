"""The facade: one :class:`ContentFilter` per tenant policy, built once at start-up.

* :meth:`ContentFilter.scan` checks one text (``/v1/filter``);
* :meth:`ContentFilter.mask_conversation` masks a chat request's messages before
  they leave the gateway and returns the vault that restores the answer;
* :meth:`ContentFilter.output_stream` guards and restores a streamed answer.

Every check runs on normalised text; every offset reported is in the original. How a
text is scored for injection by both stages is :mod:`.two_stage`'s; how found values are
masked, redacted and reported is :mod:`.apply`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import orjson

from functions.filtering import fields
from functions.filtering.apply import mask_hits, redact_hits, whole_detection
from functions.filtering.classify import Level, highest
from functions.filtering.injection import InjectionScore, score_rules
from functions.filtering.lexicon import Lexicon
from functions.filtering.masking import StreamRestorer, Vault
from functions.filtering.memo import Memo, ScanMemo
from functions.filtering.normalise import Normalised, normalise
from functions.filtering.output import LeakDetector, OutputGuard, OutputStream
from functions.filtering.pii import PRIORITY, PROSE, find_pii
from functions.filtering.policy import Direction, FilterPolicy
from functions.filtering.results import (
    MAX_REPORTED,
    Detection,
    FilterResult,
    Hit,
    level_of,
    resolve,
    verdict_of,
    worst,
)
from functions.filtering.semantic import SecondStage
from functions.filtering.tail import PROSE_WINDOW, keyed_spans, live_start
from functions.filtering.two_stage import TwoStage
from functions.wire import ChatCompletionRequest, ChatMessage

_SYSTEM_ROLES = frozenset({"system", "developer"})

# which half of an answer's treatment: the output guard, the restore, or both in turn
Stage = Literal["both", "guard", "restore"]


@dataclass(frozen=True, slots=True)
class MaskedConversation:
    """A request as the model may see it, and what it takes to restore and guard the answer."""

    request: ChatCompletionRequest  # every text field masked
    vault: Vault
    result: FilterResult  # verdict, level and detections over all fields; text unused
    system_prompt: str  # the operator's prompt as masked (not retrieved passages): leak guard
    unreadable: int = 0  # image, audio and file parts the gateway could not read

    @property
    def messages(self) -> list[ChatMessage]:
        return self.request.messages


class ContentFilter:
    """Lexicons, PII detectors and the injection scorer under one tenant's policy."""

    def __init__(
        self,
        policy: FilterPolicy | None = None,
        lexicon: Lexicon | None = None,
        second: SecondStage | None = None,
    ) -> None:
        self.policy = policy or FilterPolicy()
        self.lexicon = lexicon if lexicon is not None else Lexicon.load(self.policy.lexicons)
        # stage 2 (the e5 head): shared by every tenant's filter of a FilterSet
        self.second = second if second is not None else SecondStage.default()
        self.two_stage = TwoStage(self.second)  # the learned model's two readings
        self.memo = ScanMemo()  # texts seen again (a conversation's earlier turns): memo.py

    def _injection(self, text: str, folded: str | None = None) -> InjectionScore:
        """The rules' score, or (the policy's ``injection_model``, the default) the learned
        model's: stage 1 decides clear cases, stage 2 reads the ones it is unsure of."""
        if not self.policy.injection_model:
            return score_rules(text, folded)
        return self.two_stage.score(text, folded)

    def injection(self, text: str) -> InjectionScore:
        """The injection score of one text under this policy (what :meth:`scan` uses)."""
        return self._injection(text)

    def prepare_injection(self, texts: Sequence[str], tenant: str | None = None) -> int:
        """Embed, in one batch, the texts among ``texts`` that stage 1 escalates, so that a
        later scan of them finds their vectors cached. Blocking (tens to hundreds of ms
        per text): call it in a worker thread before the scan, which runs on the event
        loop. With ``tenant``, a text whose score the scan memo remembers (an earlier
        turn of the conversation) is skipped: the scan will not score it again. Returns
        how many texts were escalated."""
        if tenant is not None:
            texts = self._unscored(texts, tenant)
        return self.two_stage.prepare(texts) if self.policy.injection_model else 0

    def _unscored(self, texts: Sequence[str], tenant: str) -> list[str]:
        """``texts`` less those whose input scan the memo remembers for ``tenant``."""
        return [t for t in texts if not self.memo.scored(self.memo.key(tenant, "input", t))]

    def prepare_request(
        self,
        body: ChatCompletionRequest,
        retrieved: frozenset[int] = frozenset(),
        tenant: str | None = None,
    ) -> int:
        """:meth:`prepare_injection` over the texts :meth:`mask_request` will score (those
        of user, tool and function messages, one per message, as :mod:`.fields` groups them)."""
        return self.prepare_injection(fields.walk(body, retrieved).injection_texts(), tenant)

    def unembedded(
        self, body: ChatCompletionRequest, retrieved: frozenset[int], tenant: str
    ) -> list[str]:
        """The inputs stage 2 would embed for the texts :meth:`mask_request` scores, less
        those the scan memo remembers and those already embedded (stage 1 alone: cheap;
        embed the rest with :meth:`embed_for_stage_two`, in a worker thread)."""
        if not self.policy.injection_model:
            return []
        texts = self._unscored(fields.walk(body, retrieved).injection_texts(), tenant)
        return self.two_stage.unembedded(texts)

    def embed_for_stage_two(self, inputs: Sequence[str]) -> None:
        """Embed :meth:`unembedded`'s ``inputs`` in one batch. Blocking: a worker thread."""
        self.two_stage.embed(inputs)

    def detect(self, norm: Normalised, direction: Direction) -> list[Hit]:
        """Disjoint lexicon and PII hits in ``norm``, with this policy's actions and levels."""
        return resolve(self.findings(norm, direction), PRIORITY)

    def findings(self, norm: Normalised, direction: Direction, start: int = 0) -> list[Hit]:
        """Every lexicon and PII hit in ``norm`` that starts at or after normalised index
        ``start``, overlaps included (:meth:`detect` resolves them)."""
        actions, levels = self.policy.actions(direction), self.policy.levels
        hits = self.lexicon.find(norm, start)
        hits += [
            Hit(f.type, f.start, f.end, actions[f.type], "pii", f.rule, levels[f.type], f.canonical)
            for f in find_pii(norm, start, prose=self._prose(direction))
        ]
        return hits

    def _prose(self, direction: Direction) -> bool:
        """Whether names and addresses are looked for: not on output where both are
        allowed (the default: an answer may name anyone; see policy)."""
        actions = self.policy.actions(direction)
        return direction == "input" or any(actions[t] != "allow" for t in PROSE)

    def scan(
        self,
        text: str,
        direction: Direction = "input",
        *,
        vault: Vault | None = None,
        system_prompt: str | None = None,
        score_injection_too: bool = True,
        restorable: bool = True,
        message: int | None = None,
        tenant: str | None = None,
    ) -> FilterResult:
        """Check ``text``: masked with placeholders from ``vault`` on input, redacted on output.

        On output, ``system_prompt`` (as the model saw it) enables the leak check. With
        ``tenant``, what the scan finds is remembered for that tenant's next request
        carrying the same text (:mod:`.memo`).
        """
        memo: Memo | None = None
        norm: Normalised | None = None
        if tenant is not None:
            key = self.memo.key(tenant, direction, text)
            memo = self.memo.get(key)
            if memo is None:
                norm = normalise(text)
                memo = self.memo.put(key, self.detect(norm, direction))
            hits = list(memo.hits)
        else:
            norm = normalise(text)
            hits = self.detect(norm, direction)
        if direction == "input":
            masked, detections = mask_hits(
                text, hits, Vault.for_texts([text]) if vault is None else vault, restorable, message
            )
        else:
            masked, detections = redact_hits(text, hits)
        whole: list[Detection] = []
        score, reasons = 0.0, tuple[str, ...]()
        if direction == "input" and score_injection_too:
            injection = memo.injection if memo is not None else None
            if injection is None:
                injection = self._injection(text, (norm or normalise(text)).text)
                if memo is not None:
                    memo.injection = injection
            score, reasons = injection.score, injection.reasons
            if score >= self.policy.injection_threshold:
                whole.append(
                    whole_detection(
                        text,
                        "PROMPT_INJECTION",
                        self.policy.injection_action,
                        "injection",
                        ",".join(reasons),
                        Level.PUBLIC,
                        message,
                    )
                )
        if direction == "output" and system_prompt:
            leak = LeakDetector(system_prompt, self.policy.leak_ngram_chars)
            if leak.feed(text):
                whole.append(
                    whole_detection(
                        text, "SYSTEM_PROMPT_LEAK", "block", "leak", "ngram", Level.SECRET
                    )
                )
        return FilterResult(
            verdict=verdict_of([*hits, *whole]),
            masked_text=masked,
            level=level_of([*hits, *whole], self.policy.default_level),
            detections=[*detections, *whole],
            injection_score=score,
            reasons=list(reasons),
            omitted=len(hits) - len(detections),
        )

    def mask_request(
        self,
        body: ChatCompletionRequest,
        retrieved: frozenset[int] = frozenset(),
        tenant: str | None = None,
    ) -> MaskedConversation:
        """Mask every text field of ``body`` with one vault (see :mod:`.fields`).

        ``retrieved``: indices of messages that hold retrieved passages; like the
        operator's system prompt, their values are masked but never restored, and
        they are not what the leak guard protects. ``tenant``: remember what each
        text's scan found, for the next turn of the conversation (:meth:`scan`).
        """
        walk = fields.walk(body, retrieved)
        vault = Vault.for_texts([orjson.dumps(walk.data).decode()])

        def scan(text: str, injection: bool, restorable: bool, message: int | None) -> FilterResult:
            return self.scan(
                text,
                vault=vault,
                score_injection_too=injection,
                restorable=restorable,
                message=message,
                tenant=tenant,
            )

        found = walk.mask(scan)
        detections = [d for result in found for d in result.detections]
        omitted = sum(result.omitted for result in found)
        if len(detections) > MAX_REPORTED:  # blocks first: they say why a request was refused
            detections.sort(key=lambda d: d.action != "block")
            omitted += len(detections) - MAX_REPORTED
            detections = detections[:MAX_REPORTED]
        masked = ChatCompletionRequest.model_validate(walk.data)
        system_prompt = "\n".join(
            m.text()
            for i, m in enumerate(masked.messages)
            if m.role in _SYSTEM_ROLES and i not in retrieved
        )
        result = FilterResult(
            verdict=worst(r.verdict for r in found),
            masked_text="",
            level=highest((r.level for r in found), floor=self.policy.default_level),
            detections=detections,
            injection_score=max((r.injection_score for r in found), default=0.0),
            reasons=sorted({reason for r in found for reason in r.reasons}),
            omitted=omitted,
        )
        unreadable = fields.unreadable_parts(body)
        return MaskedConversation(masked, vault, result, system_prompt, unreadable)

    def mask_conversation(self, messages: Sequence[ChatMessage]) -> MaskedConversation:
        """:meth:`mask_request` for bare messages."""
        return self.mask_request(ChatCompletionRequest(model="-", messages=list(messages)))

    def carries_instructions(self, texts: Sequence[str]) -> list[bool]:
        """Whether each retrieved passage tries to instruct the model (indirect injection).
        The passages stage 1 escalates are embedded in one batch (one call, not one each).
        Blocking: call it in a worker thread."""
        self.prepare_injection(texts)
        threshold = self.policy.injection_threshold
        return [self._injection(text).score >= threshold for text in texts]

    def output_guard(self, system_prompt: str | None = None) -> OutputGuard:
        """A guard for one streamed answer (``system_prompt``: as the model saw it)."""
        leak = LeakDetector(system_prompt, self.policy.leak_ngram_chars) if system_prompt else None
        reach = self.policy.hold_back_chars
        # a name's or an address's context may follow it: hold a fixed window
        window = PROSE_WINDOW if self._prose("output") else 0

        def live(text: str, pos: int) -> tuple[int, list[tuple[int, int]]]:
            start = min(self.lexicon.live_start(text, pos, reach), live_start(text, pos))
            start = min(start, max(pos, len(text) - window))
            return start, keyed_spans(text, pos)

        return OutputGuard(
            lambda norm, start: self.findings(norm, "output", start), live, leak=leak
        )

    def output_stream(self, conversation: MaskedConversation) -> OutputStream:
        """Guard, then restore, one streamed answer to ``conversation``."""
        return self.answer_stream(conversation)

    def answer_stream(
        self,
        conversation: MaskedConversation,
        escape: Callable[[str], str] | None = None,
        stage: Stage = "both",
    ) -> OutputStream:
        """Guard, then restore, one text of an answer (``escape``: restored values, say
        inside a JSON string of tool-call arguments); ``stage`` may ask for one half."""
        guard = (
            self.output_guard(conversation.system_prompt or None) if stage != "restore" else None
        )
        restorer = StreamRestorer(conversation.vault, escape) if stage != "guard" else None
        return OutputStream(guard, restorer)


class FilterSet:
    """One :class:`ContentFilter` per tenant, all built (and every lexicon read) up front."""

    def __init__(self, policy: FilterPolicy, second: SecondStage | None = None) -> None:
        self.policy = policy
        self.second = second if second is not None else SecondStage.default()
        self._default = ContentFilter(policy, second=self.second)
        self._tenants = {
            name: ContentFilter(policy.for_tenant(name), second=self.second)
            for name in policy.tenants
        }

    def for_tenant(self, tenant: str) -> ContentFilter:
        return self._tenants.get(tenant, self._default)
