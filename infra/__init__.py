"""How Enclave runs: the ``enclave`` command, the local launcher and the Modal app.

Every process Enclave starts imports this package first, so what must hold before any
other import is set here, once.

httpx imports its own command-line client (``httpx._main``) whenever rich, click and
pygments are installed, and modal brings all three: about 60 ms of every start (90 on a
slow core), on the path where a scaled-to-zero gateway's first caller waits, for a
program no Enclave process runs. A ``None`` entry in ``sys.modules`` makes that one
import fail as if they were missing; httpx then defines a stub ``httpx.main`` instead.
"""

from __future__ import annotations

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
