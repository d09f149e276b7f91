"""Medians over rounds, overheads over the upstream, Enclave against LiteLLM, the table."""

from __future__ import annotations

import statistics
from typing import Any

# (key, label, lower is better)
ROWS = [
    ("seq_p50_ms", "sequential p50 (ms)", True),
    ("seq_p99_ms", "sequential p99 (ms)", True),
    ("overhead_p50_ms", "added latency p50 (ms)", True),
    ("overhead_p99_ms", "added latency p99 (ms)", True),
    ("rps_32", "requests/s, 32 connections", False),
    ("streams_8", "64-chunk streams/s, 8 connections", False),
    ("cpu_ms_per_request", "server CPU per request (ms), 32 connections", True),
    ("cpu_ms_per_stream", "server CPU per 64-chunk stream (ms)", True),
    ("ttft_p50_ms", "first content chunk p50 (ms), 20 ms/word", True),
    ("ttft_added_ms", "first content chunk added (ms)", True),
    ("failed", "failed requests (median of rounds)", True),
]


def medians(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def derive(results: dict[str, dict[str, float]]) -> None:
    """Add each proxy's overheads over the upstream reached directly, in place."""
    base = results["direct"]
    for name, figures in results.items():
        if name == "direct":
            continue
        figures["overhead_p50_ms"] = figures["seq_p50_ms"] - base["seq_p50_ms"]
        figures["overhead_p99_ms"] = figures["seq_p99_ms"] - base["seq_p99_ms"]
        if "ttft_p50_ms" in figures and "ttft_p50_ms" in base:
            figures["ttft_added_ms"] = figures["ttft_p50_ms"] - base["ttft_p50_ms"]


def ratio(enclave: float | None, litellm: float | None, lower_better: bool) -> str:
    """How many times better Enclave is (> 1) or worse (< 1) than LiteLLM."""
    if enclave is None or litellm is None:
        return ""
    good, bad = (litellm, enclave) if lower_better else (enclave, litellm)
    if bad <= 0:
        return "n/a"
    return f"{good / bad:.1f}×"


def _cell(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def table(results: dict[str, dict[str, float]]) -> str:
    names = [n for n in ("direct", "enclave", "litellm") if n in results]
    header = ["", *names]
    both = "enclave" in results and "litellm" in results
    if both:
        header.append("Enclave vs LiteLLM")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, label, lower in ROWS:
        cells = [_cell(results[n].get(key)) for n in names]
        if both:
            cells.append(ratio(results["enclave"].get(key), results["litellm"].get(key), lower))
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)


def summary(meta: dict[str, Any]) -> str:
    return (
        f"{meta['cpus']} CPUs ({meta['cpu_model']}), load average before/after: "
        f"{meta['load_before']} / {meta['load_after']}; {meta['rounds']} round(s) of "
        f"{meta['seconds']:g} s per load run (medians), {meta['ttft_count']} paced streams "
        f"per target; {meta.get('prompt', 'the same message every request')}; "
        f"gateway args: {meta['gateway_args'] or '(none)'}"
    )
