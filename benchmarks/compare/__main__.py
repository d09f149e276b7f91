"""``python -m benchmarks.compare``: see the package docstring."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.compare import load, report, servers


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10, help="per load run (default 10)")
    parser.add_argument("--rounds", type=int, default=1, help="load rounds; medians reported")
    parser.add_argument("--ttft-count", type=int, default=50, help="paced streams per target")
    parser.add_argument(
        "--litellm",
        type=Path,
        default=servers.ROOT / ".bench" / "litellm",
        help="LiteLLM proxy's virtualenv (default .bench/litellm)",
    )
    parser.add_argument("--skip", action="append", default=[], choices=["enclave", "litellm"])
    parser.add_argument(
        "--same-prompt",
        action="store_true",
        help="send one message again and again (default: a fresh message each request)",
    )
    parser.add_argument(
        "--gateway-arg",
        action="append",
        default=[],
        help="extra argument to `enclave serve gateway` (repeatable)",
    )
    parser.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the gateway (repeatable)",
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "load_before": _load(),
        "rounds": args.rounds,
        "seconds": args.seconds,
        "ttft_count": args.ttft_count,
        "prompt": "the same message every request" if args.same_prompt else "a fresh message each",
        "gateway_args": " ".join(args.gateway_arg + args.gateway_env),
    }
    with ExitStack() as stack:
        fast, fast_pid = servers.fake_upstream(stack, logs)
        paced, _ = servers.fake_upstream(stack, logs, delay_ms=20)
        direct, direct_paced = servers.direct(fast, paced, fast_pid)
        targets = [direct]
        if "enclave" not in args.skip:
            env = dict(item.split("=", 1) for item in args.gateway_env)
            targets.append(servers.enclave(stack, logs, fast, paced, args.gateway_arg, env))
        if "litellm" not in args.skip:
            if not (args.litellm / "bin" / "litellm").exists():
                sys.exit(f"no LiteLLM proxy in {args.litellm}: `just bench-compare` installs it")
            targets.append(servers.litellm(stack, logs, fast, paced, args.litellm))
        for target in targets:
            load.check(target)
        rounds: dict[str, list[dict[str, float]]] = {t.name: [] for t in targets}
        for number in range(args.rounds):  # interleaved: a burst of load elsewhere hits all
            for target in targets:
                print(f"round {number + 1}: {target.name}…", file=sys.stderr, flush=True)
                rounds[target.name].append(
                    load.load_round(target, args.seconds, not args.same_prompt)
                )
        results = {name: report.medians(r) for name, r in rounds.items()}
        for target in [direct_paced, *targets[1:]]:
            print(f"time to first token: {target.name}…", file=sys.stderr, flush=True)
            results[target.name].update(load.ttft(target, args.ttft_count, not args.same_prompt))
    meta["load_after"] = _load()
    report.derive(results)
    return {"meta": meta, "results": results, "rounds": rounds}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # SIGTERM unwinds like Ctrl-C, so every server started is stopped on the way out
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    out = servers.ROOT / ".benchmarks" / f"compare-{time.strftime('%Y%m%d-%H%M%S')}.json"
    logs = out.with_suffix(".logs")  # every server's log, kept: a failure is explained there
    logs.mkdir(parents=True)
    try:
        data = run(args, logs)
    except RuntimeError as exc:
        print(f"bench-compare: {exc}\nserver logs: {logs}", file=sys.stderr)
        return 1
    out.write_text(json.dumps(data, indent=2))
    print(report.table(data["results"]))
    print(f"\n{report.summary(data['meta'])}\nfigures: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
