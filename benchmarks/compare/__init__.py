"""Enclave's gateway side by side with LiteLLM proxy, against one cheap upstream.

``just bench-compare`` (or ``python -m benchmarks.compare``) starts the fake upstream
(:mod:`benchmarks.fake_upstream`, a test double) twice, one answering at once and
one pacing a stream at a word every 20 ms, and in front of them (a) nothing,
(b) Enclave's gateway with its defaults (filters on; the answer cache off, or
every repeated question would be a cache hit) and (c) LiteLLM proxy with a master
key and no database, from its own virtualenv (``.bench/litellm``). For each it
reports sequential p50/p99 latency, requests/s at 32 connections and 64-chunk
streams/s at 8 connections (all measured by ``wrk``, a native load generator, so
the client does not eat the proxies' CPU), and the time to the first content
chunk of the paced stream (a small asyncio client, sequential). A Markdown table
goes to stdout, the figures to ``.benchmarks/compare-<time>.json``.

    servers.py  start and stop the processes (every one stopped, even on failure)
    load.py     the wrk runs and the time-to-first-token client
    report.py   medians, overheads, ratios and the table
    __main__.py the command
"""
