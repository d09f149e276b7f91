"""The naming rule for tenants and collections, without the store that enforces it.

LanceDB table names are ``{tenant}__{collection}`` (:mod:`.store`); both names must
match :data:`NAME`, which has no ``__``, so a name can't be forged to reach another
tenant's table. Kept apart from the store so the gateway's OpenAPI document can
state the rule without importing LanceDB at start-up.
"""

from __future__ import annotations

import re

NAME = re.compile(r"^[A-Za-z0-9]+(?:[_-][A-Za-z0-9]+)*$")
MAX_NAME = 64
