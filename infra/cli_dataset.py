"""``enclave dataset export --min-rating 1 [--tenant T] [--since DATE] --out train.jsonl``.

The conversations whose answers users liked, as OpenAI chat fine-tuning JSONL: one
``{"messages": [{"role": "system"|"user"|"assistant", "content": "…"}, …]}`` per line,
ending with the rated answer. They come from the audit log's captured content
(``ENCLAVE_AUDIT_CAPTURE_CONTENT``, decrypted with ``ENCLAVE_AUDIT_KEK``), joined
with the feedback store by (tenant, request id).

Personal data never leaves as it was said. What capture keeps is the request as the
caller sent it and the answer as the caller received it, restored: raw values. So
each conversation, answer included, is masked again here by its tenant's input
filter, with one vault, as the gateway masks a request: the same phone number in
question and answer is the same ``<PHONE_1>``. A conversation the policy would
block is left out. Identical masked conversations are written once.

Which answers: those every rating of which is at least ``--min-rating`` (a rating by
several callers of one tenant counts each); with ``--since`` those answered since;
the latest answer where a request id was reused. Left out, and counted: answers
without captured content, with parts that are not text (images, audio, files), tool
turns, and those the policy blocks.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson
from pydantic import ValidationError

from functions.audit.envelope import WrappedKey, decrypt_content, parse_keyring
from functions.audit.errors import AuditError
from functions.audit.settings import load_keys
from functions.audit.store import Segment
from functions.filtering.engine import FilterSet
from functions.settings import Settings
from functions.wire import ChatMessage
from infra.cli_audit import audit_of
from infra.cli_experiments import chat_records, feedback_store, parse_since

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dataset = commands.add_parser("dataset", help="fine-tuning data from rated answers")
    actions = dataset.add_subparsers(dest="dataset_command", required=True)
    export = actions.add_parser("export", help="rated conversations as chat fine-tuning JSONL")
    export.add_argument("--min-rating", type=int, choices=(-1, 1), default=1)
    export.add_argument("--tenant", help="one tenant's conversations only")
    export.add_argument("--since", type=parse_since, help="YYYY-MM-DD or an ISO time (UTC)")
    export.add_argument("--out", type=Path, required=True, help="the JSONL file to write")


@dataclass
class Tally:
    exported: int = 0
    duplicates: int = 0
    uncaptured: int = 0  # rated, but no captured content (capture off, or no KEK for it)
    unsupported: int = 0  # non-text parts or tool turns
    blocked: int = 0  # the policy refuses the conversation


def liked(ratings: Iterable[tuple[str, str, int]], min_rating: int) -> set[tuple[str, str]]:
    """(tenant, request id) of each answer all of whose ratings reach ``min_rating``."""
    lowest: dict[tuple[str, str], int] = {}
    for tenant, request_id, rating in ratings:
        key = (tenant, request_id)
        lowest[key] = min(rating, lowest.get(key, rating))
    return {key for key, rating in lowest.items() if rating >= min_rating}


def conversation(content: Any) -> list[dict[str, str]] | None:
    """The captured prompt and answer as fine-tuning messages (None: not plain text)."""
    if not isinstance(content, dict) or not isinstance(content.get("prompt"), list):
        return None
    answer = content.get("answer")
    if not isinstance(answer, str) or not answer:
        return None
    messages: list[dict[str, str]] = []
    for raw in content["prompt"]:
        try:
            message = ChatMessage.model_validate(raw)
        except ValidationError:
            return None
        role = _ROLES.get(message.role)
        parts = message.content if isinstance(message.content, list) else []
        if role is None or message.tool_calls or any(p.type != "text" for p in parts):
            return None
        messages.append({"role": role, "content": message.text()})
    return [*messages, {"role": "assistant", "content": answer}]


def masked(
    filters: FilterSet, tenant: str, messages: list[dict[str, str]]
) -> list[dict[str, str]] | None:
    """``messages`` masked by the tenant's input filter with one vault (None: blocked)."""
    parsed = [ChatMessage.model_validate(m) for m in messages]
    result = filters.for_tenant(tenant).mask_conversation(parsed)
    if result.result.blocked:
        return None
    return [
        {"role": m["role"], "content": n.text()}
        for m, n in zip(messages, result.messages, strict=True)
    ]


def export(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    try:
        audit, storage = audit_of(settings)
    except AuditError as exc:  # a bucket without the audit keys: say which to set
        print(f"dataset export: {exc}", file=out)
        return 2
    if not audit.capture_content:
        print(
            "dataset export: content capture is off (ENCLAVE_AUDIT_CAPTURE_CONTENT=false): "
            "only answers captured while it was on can be exported",
            file=out,
        )
    try:
        keks = load_keys(audit, signing=False).keks
    except (AuditError, OSError, ValueError) as exc:
        print(f"dataset export: {exc}", file=out)
        return 2
    store = feedback_store(settings)
    rows = store.ratings(tenant=args.tenant) if store else []
    if store is not None:
        store.close()
    wanted = liked(((r.tenant, r.request_id, r.rating) for r in rows), args.min_rating)
    latest: dict[tuple[str, str], tuple[dict[str, Any], Segment]] = {}
    for record, segment in chat_records(storage, args.since):
        key = (str(record.get("tenant")), str(record.get("trace_id")))
        if key not in wanted or str(record.get("status")) != "200":
            continue
        kept = latest.get(key)
        if kept is None or str(kept[0].get("ts")) <= str(record.get("ts")):  # ISO UTC: sortable
            latest[key] = (record, segment)
    filters, tally = FilterSet(settings.filtering), Tally()
    keyrings: dict[Segment, dict[int, WrappedKey]] = {}
    seen: set[str] = set()
    lines: list[bytes] = []
    for (tenant, _), (record, segment) in latest.items():
        if segment not in keyrings:
            keyrings[segment] = parse_keyring(storage.keyring(segment))
        wrapped = keyrings[segment].get(int(record.get("seq") or 0))
        if wrapped is None or "encrypted_content" not in record:
            tally.uncaptured += 1
            continue
        try:
            content = decrypt_content(record, wrapped, keks)
        except AuditError:
            tally.uncaptured += 1
            continue
        messages = conversation(content)
        if messages is None:
            tally.unsupported += 1
            continue
        safe = masked(filters, tenant, messages)
        if safe is None:
            tally.blocked += 1
            continue
        line = orjson.dumps({"messages": safe})
        digest = hashlib.sha256(line).hexdigest()
        if digest in seen:
            tally.duplicates += 1
            continue
        seen.add(digest)
        lines.append(line + b"\n")
    _write(args.out, b"".join(lines))
    tally.exported = len(lines)
    print(
        f"dataset export: {tally.exported} conversation(s) to {args.out}; left out: "
        f"{tally.duplicates} duplicate(s), {tally.uncaptured} without captured content, "
        f"{tally.unsupported} not plain text, {tally.blocked} blocked by the policy",
        file=out,
    )
    if not audit.capture_content and not lines:
        return 2
    return 0


def _write(path: Path, data: bytes) -> None:
    """Replace ``path`` at once, readable by its owner only (it holds conversations)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def run(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    try:
        return export(settings, args, out)
    except OSError as exc:  # an --out in a missing folder, or a folder: one line, no traceback
        print(f"enclave: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
