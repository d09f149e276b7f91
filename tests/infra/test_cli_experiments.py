"""The report's statistics, against figures worked out by hand (or in R: prop.test,
binom::binom.wilson), and its reading of records and ratings."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from functions.feedback import Rating
from infra.cli_experiments import build_report, percentile, render, two_proportion_p, wilson


def test_wilson_interval() -> None:
    low, high = wilson(8, 10) or (0.0, 0.0)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    low, high = wilson(0, 20) or (1.0, 1.0)
    assert low == 0.0 and high == pytest.approx(0.1611, abs=1e-4)
    assert wilson(0, 0) is None


def test_two_proportion_z_test() -> None:
    # 45/100 vs 30/100: pooled 0.375, z = 2.1909, two-sided p = 0.02846
    assert two_proportion_p(45, 100, 30, 100) == pytest.approx(0.02846, abs=1e-4)
    assert two_proportion_p(30, 100, 45, 100) == pytest.approx(0.02846, abs=1e-4)
    assert two_proportion_p(5, 5, 7, 7) == 1.0  # everyone up on both sides
    assert two_proportion_p(1, 2, 0, 0) is None


def test_percentiles_interpolate() -> None:
    assert percentile([], 0.5) is None
    assert percentile([10.0], 0.95) == 10.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == pytest.approx(50.5)
    assert percentile(values, 0.95) == pytest.approx(95.05)


def record(variant: str, status: int | str = 200, tenant: str = "acme", ms: float = 10.0) -> Any:
    decisions = {"experiment": "chat", "variant": variant}
    fields = {"tenant": tenant, "status": status, "latency_ms": ms, "tokens_in": 3, "tokens_out": 4}
    return ({**fields, "decisions": decisions}, Path("x"))


def rated(variant: str, value: int, tenant: str = "acme") -> Rating:
    return Rating(tenant, "r", "k", value, None, "chat", variant, 0.0)


def test_report_figures_per_variant() -> None:
    records = [record("a", ms=float(i)) for i in range(1, 11)]
    records += [record("b", 503), record("b", "499"), record("b")]
    records += [record("b", tenant="other"), ({"decisions": {"experiment": "x"}}, Path("x"))]
    ratings = [rated("a", 1)] * 8 + [rated("a", -1)] * 2 + [rated("b", -1)] * 3
    report = build_report("chat", iter(records), ratings, tenant="acme", order=["b", "a"])
    b, a = report["variants"]
    assert (a["variant"], a["requests"], a["errors"], a["tokens_in"], a["tokens_out"]) == (
        "a",
        10,
        0,
        30,
        40,
    )
    assert a["latency_ms_p50"] == pytest.approx(5.5)
    assert (a["ratings_up"], a["ratings_down"], a["up_rate"]) == (8, 2, 0.8)
    assert (b["requests"], b["errors"], b["error_rate"]) == (3, 2, pytest.approx(2 / 3))
    (comparison,) = report["comparisons"]
    assert (comparison["control"], comparison["variant"]) == ("b", "a")  # the configured order
    assert comparison["p_value"] < 0.05 and comparison["significant"]
    out = io.StringIO()
    render(report, out)
    assert "a vs b (up-rate, two-proportion z-test): p = " in out.getvalue()
    assert "significant at 0.05" in out.getvalue()


def test_report_of_nothing() -> None:
    report = build_report("chat", iter([]), [])
    assert report["variants"] == [] and report["comparisons"] == []
    out = io.StringIO()
    render(report, out)
    assert "no requests or ratings" in out.getvalue()
