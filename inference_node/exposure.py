"""Fail closed: a node that more than its own host can reach needs a key.

On 127.0.0.1 only the gateway beside it can call the node. Bound to any other
address, or served by Modal at a public URL, anyone who finds the port could
use the GPU and read the model's answers, so the node refuses to start unless
``ENCLAVE_NODE_API_KEY`` is set (the gateway's deployment then sends it).
"""

from __future__ import annotations

import ipaddress

from functions.settings import NodeSettings


class NodeKeyMissingError(RuntimeError):
    """A start-up error: the node would be reachable without a key."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:  # any other name may resolve anywhere
        return False


def require_node_key(node: NodeSettings, *, public: bool = False) -> None:
    """Raise :class:`NodeKeyMissingError` unless the node is keyed or loopback-only.

    ``public``: the node is reachable from outside whatever its bind address (Modal).
    """
    if node.api_key is not None and node.api_key.get_secret_value():
        return
    if public:
        where = "at a public URL"
    elif not is_loopback(node.host):
        where = f"on {node.host}, which is not a loopback address"
    else:
        return
    raise NodeKeyMissingError(
        f"Refusing to serve the inference node {where} without a key: set "
        "ENCLAVE_NODE_API_KEY (and the same key as the gateway deployment's api_key)."
    )


__all__ = ["NodeKeyMissingError", "is_loopback", "require_node_key"]
