"""One TLS context for every HTTP client the gateway makes to reach upstreams.

Why: making a context loads the whole CA bundle, about a tenth of a second of CPU, and
the gateway made three of them while it started (the relay's pool, the warmth probes,
the context-length look-ups): a fifth of its start-up CPU, on a path where a scaled-to-
zero gateway's first caller waits. The context is made once, by whoever needs it first
(usually the relay's start-up thread), and shared: it is only read once made.

As httpx does by default, ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` name an organisation's
own CA bundle; proxies from the environment are a separate matter, and not used.
"""

from __future__ import annotations

import ssl
import threading

import httpx

_lock = threading.Lock()
_context: ssl.SSLContext | None = None


SIDE_CONNECTIONS = 16  # per side client: probes and look-ups are few and short


def upstream_client() -> httpx.AsyncClient:
    """A client for the gateway's side requests to its upstreams (health probes, model
    listings): the shared context, and no proxy from the environment (where a request
    goes comes from Settings only). On the relay's kind of transport (aiohttp's pool,
    :mod:`functions.transport`): httpx's own would import httpcore for these alone, 60 ms
    of a start whose first probe runs beside the first chat."""
    from functions.transport import pooled  # the relay loads it at start-up anyway

    return httpx.AsyncClient(transport=pooled(SIDE_CONNECTIONS), trust_env=False)


def context() -> ssl.SSLContext:
    """The shared client context: certificates and host names verified."""
    global _context
    if _context is None:
        with _lock:
            if _context is None:
                _context = httpx.create_ssl_context(trust_env=True)
    return _context
