"""``enclave experiments report NAME [--json] [--tenant T] [--since DATE]``: compare variants.

Read from what the gateway keeps, with the same settings (``ENCLAVE_DATA_DIR``,
``ENCLAVE_AUDIT_*``) as ``enclave audit verify``: the audit log for requests (each
chat of an experiment records ``experiment`` and ``variant`` among its decisions),
the feedback store for ratings (beside it, or the bucket of ``ENCLAVE_STORAGE_URI``).
Per variant: requests, error rate (status 400 and above, refusals included), latency
p50/p95, tokens in and out, ratings up and down with the up-rate's 95 % Wilson
interval; and each variant against the first (the control): a two-sided
two-proportion z-test of the up-rates, significant when p < 0.05. An operator reads
every tenant's traffic; ``--tenant`` narrows it.

Cost: one pass over the audit log's request records (from ``--since`` on), one query
of the feedback store (with a bucket: one GET per rating, in parallel).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson

from functions.audit.errors import AuditError
from functions.audit.store import AuditStorage, Segment
from functions.feedback import Rating, RatingsReader, ratings_reader
from functions.settings import Settings
from infra.cli_audit import audit_of

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile
ALPHA = 0.05


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    experiments = commands.add_parser("experiments", help="compare the variants of an experiment")
    actions = experiments.add_subparsers(dest="experiments_command", required=True)
    report = actions.add_parser("report", help="requests, errors, latency, tokens and ratings")
    report.add_argument("name", help="the experiment (its public model name)")
    report.add_argument("--json", action="store_true", help="one JSON document")
    report.add_argument("--tenant", help="one tenant's traffic only")
    report.add_argument("--since", type=parse_since, help="YYYY-MM-DD or an ISO time (UTC)")


def parse_since(text: str) -> dt.datetime:
    """A date or time as given on the command line, in UTC when it names no zone."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date: {text!r}") from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def feedback_store(settings: Settings) -> RatingsReader | None:
    """The gateway's ratings (its SQLite file or its bucket), or None where nothing was rated.

    Reading ratings needs no audit key: on a bucket they are objects of their own, and a
    local SQLite file only takes its place (beside the audit directory) from the settings.
    """
    if settings.storage.remote:
        return ratings_reader(settings, settings.data_dir / "audit")  # unused with a bucket
    audit = settings.audit
    explicit = "directory" in audit.model_fields_set
    return ratings_reader(settings, audit.directory if explicit else settings.state_dir / "audit")


def chat_records(
    storage: AuditStorage, since: dt.datetime | None = None
) -> Iterator[tuple[dict[str, Any], Segment]]:
    """Every chat request's record (and its segment) in the audit storage, from ``since``.

    The same storage the gateway writes: a directory, or every writer's chain in the bucket.
    """
    first_day = since.astimezone(dt.UTC).date().isoformat() if since else ""
    for segments in storage.segments().values():
        for segment in segments:
            if segment.day < first_day:
                continue
            for line in storage.lines(segment):
                record = _parsed(line)
                if record is None or record.get("kind") != "request" or "route" in record:
                    continue
                if since is None or _time(record) >= since:
                    yield record, segment


def _parsed(line: bytes) -> dict[str, Any] | None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:  # a torn last line; verify reports it
        return None
    return record if isinstance(record, dict) else None


def _time(record: dict[str, Any]) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(str(record.get("ts")))
    except ValueError:
        return dt.datetime.min.replace(tzinfo=dt.UTC)


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) by linear interpolation between order statistics."""
    if not values:
        return None
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def wilson(up: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion ``up / n`` (None without ratings)."""
    if n == 0:
        return None
    p = up / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def two_proportion_p(up1: int, n1: int, up2: int, n2: int) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test (None when a side is empty)."""
    if n1 == 0 or n2 == 0:
        return None
    pooled = (up1 + up2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:  # all up or all down on both sides: no difference to see
        return 1.0
    z = (up1 / n1 - up2 / n2) / se
    return 2 * (1 - normal_cdf(abs(z)))


@dataclass
class VariantStats:
    variant: str
    requests: int = 0
    errors: int = 0
    latency_ms: list[float] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    up: int = 0
    down: int = 0

    def add(self, record: dict[str, Any]) -> None:
        self.requests += 1
        status = str(record.get("status"))
        self.errors += not (status.isdigit() and int(status) < 400)
        if isinstance(record.get("latency_ms"), int | float):
            self.latency_ms.append(float(record["latency_ms"]))
        self.tokens_in += int(record.get("tokens_in") or 0)
        self.tokens_out += int(record.get("tokens_out") or 0)

    def summary(self) -> dict[str, Any]:
        rated = self.up + self.down
        interval = wilson(self.up, rated)
        return {
            "variant": self.variant,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.errors / self.requests if self.requests else None,
            "latency_ms_p50": percentile(self.latency_ms, 0.5),
            "latency_ms_p95": percentile(self.latency_ms, 0.95),
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "ratings_up": self.up,
            "ratings_down": self.down,
            "up_rate": self.up / rated if rated else None,
            "up_rate_95": list(interval) if interval else None,
        }


def build_report(
    name: str,
    records: Iterator[tuple[dict[str, Any], Segment]],
    ratings: list[Rating],
    tenant: str | None = None,
    order: list[str] | None = None,
) -> dict[str, Any]:
    """The report as data: the variants in ``order`` (the configured one: the first is the
    control), then any others (a variant since removed from the config) by name."""
    stats: dict[str, VariantStats] = {}
    for record, _ in records:
        decisions = record.get("decisions") or {}
        if decisions.get("experiment") != name or (tenant and record.get("tenant") != tenant):
            continue
        variant = str(decisions.get("variant"))
        stats.setdefault(variant, VariantStats(variant)).add(record)
    for rating in ratings:
        if rating.variant is None:
            continue
        entry = stats.setdefault(rating.variant, VariantStats(rating.variant))
        entry.up += rating.rating > 0
        entry.down += rating.rating < 0
    rank = {name: i for i, name in enumerate(order or [])}
    variants = sorted(stats.values(), key=lambda s: (rank.get(s.variant, len(rank)), s.variant))
    comparisons = []
    if variants:
        control = variants[0]
        for other in variants[1:]:
            p = two_proportion_p(
                control.up, control.up + control.down, other.up, other.up + other.down
            )
            comparisons.append(
                {
                    "control": control.variant,
                    "variant": other.variant,
                    "p_value": p,
                    "significant": p is not None and p < ALPHA,
                }
            )
    return {
        "experiment": name,
        "tenant": tenant,
        "variants": [v.summary() for v in variants],
        "comparisons": comparisons,
        "alpha": ALPHA,
    }


def render(report: dict[str, Any], out: TextIO) -> None:
    """The report as a table an operator reads."""
    print(
        f"experiment {report['experiment']}"
        + (f" (tenant {report['tenant']})" if report["tenant"] else ""),
        file=out,
    )
    if not report["variants"]:
        print("no requests or ratings recorded for it", file=out)
        return
    header = (
        "variant",
        "requests",
        "errors",
        "p50 ms",
        "p95 ms",
        "tokens in/out",
        "up",
        "down",
        "up-rate (95 %)",
    )
    rows = [header]
    for v in report["variants"]:
        rate = "-"
        if v["up_rate"] is not None:
            low, high = v["up_rate_95"]
            rate = f"{v['up_rate']:.1%} ({low:.1%}–{high:.1%})"
        rows.append(
            (
                v["variant"],
                str(v["requests"]),
                f"{v['errors']} ({v['error_rate']:.1%})" if v["error_rate"] is not None else "0",
                _ms(v["latency_ms_p50"]),
                _ms(v["latency_ms_p95"]),
                f"{v['tokens_in']}/{v['tokens_out']}",
                str(v["ratings_up"]),
                str(v["ratings_down"]),
                rate,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)), file=out
        )
    for c in report["comparisons"]:
        if c["p_value"] is None:
            verdict = "not enough ratings to compare"
        else:
            verdict = (
                f"p = {c['p_value']:.4f}: "
                + ("significant" if c["significant"] else "not significant")
                + f" at {report['alpha']}"
            )
        print(
            f"{c['variant']} vs {c['control']} (up-rate, two-proportion z-test): {verdict}",
            file=out,
        )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def run(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    try:
        _, storage = audit_of(settings)
    except AuditError as exc:  # a bucket without the audit keys: say which to set
        print(f"experiments report: {exc}", file=out)
        return 2
    store = feedback_store(settings)
    ratings = store.ratings(experiment=args.name, tenant=args.tenant) if store else []
    if store is not None:
        store.close()
    if args.since is not None:
        ratings = [r for r in ratings if r.ts >= args.since.timestamp()]
    configured = settings.gateway.experiments.get(args.name)
    order = [v.name for v in configured.variants] if configured else None
    records = chat_records(storage, args.since)
    report = build_report(args.name, records, ratings, args.tenant, order)
    if args.json:
        print(json.dumps(report, indent=2), file=out)
    else:
        render(report, out)
    return 0
