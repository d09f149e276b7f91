"""``enclave keys create|list|revoke|rotate``: the key store from the command line.

``create`` and ``rotate`` print the new key once; the last line of their output is
the key alone, so scripts can take it with ``| tail -n 1``. The store is the one the
gateways use (``ENCLAVE_STORAGE_URI``: a local directory or a bucket, then with
``ENCLAVE_GATEWAY_KEY_PEPPER``); running gateways see a change within ``key_reload_s``.
"""

from __future__ import annotations

import argparse
import json
import sys

from functions.keys import KeyRecord, KeySpec, KeyStoreConfigError, key_store
from functions.settings import Settings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True
    )
    create = keys.add_parser("create", help="create a key and print it once")
    create.add_argument("--tenant", required=True)
    create.add_argument("--role", choices=["admin", "member", "auditor"], default="member")
    create.add_argument("--name")
    create.add_argument("--models", nargs="+", help="models this key may use (default: all)")
    create.add_argument("--collections", nargs="+", help="collections it may read")
    create.add_argument("--rpm", type=int, help="requests per minute")
    create.add_argument("--tpm", type=int, help="tokens per minute")
    create.add_argument("--daily-tokens", type=int, help="tokens per UTC day")
    create.add_argument("--expires", help="lifetime, e.g. 30d, 12h, 90m")
    create.add_argument(
        "--trust-user-headers",
        action="store_true",
        help="a frontend key: it may name its end users (X-OpenWebUI-User-Id, x-enclave-user, "
        "the body's user), who are audited and limited one by one",
    )
    create.add_argument("--user-rpm", type=int, help="requests per minute for each end user")
    create.add_argument("--user-tpm", type=int, help="tokens per minute for each end user")
    create.add_argument("--user-daily-tokens", type=int, help="tokens per UTC day per end user")
    listing = keys.add_parser("list", help="list keys (never their secret)")
    listing.add_argument("--json", action="store_true")
    for name in ("revoke", "rotate"):
        keys.add_parser(name, help=f"{name} a key").add_argument("key_id")


def _line(record: KeyRecord) -> str:
    state = "revoked" if record.revoked_at else "active"
    expires = record.expires_at.date().isoformat() if record.expires_at else "never"
    models = ",".join(record.models) if record.models is not None else "*"
    return (
        f"{record.id}  {record.display}…  {record.tenant:<12} {record.role:<8} {state:<8} "
        f"expires {expires:<10} models {models}"
        f"{'  frontend' if record.trust_user_headers else ''}  {record.name or ''}"
    ).rstrip()


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        store = key_store(settings)
    except KeyStoreConfigError as exc:
        print(f"enclave: {exc}", file=sys.stderr)
        return 2
    if args.keys_command == "create":
        spec = KeySpec(
            tenant=args.tenant,
            role=args.role,
            name=args.name,
            models=args.models,
            collections=args.collections,
            rpm=args.rpm,
            tpm=args.tpm,
            daily_tokens=args.daily_tokens,
            trust_user_headers=args.trust_user_headers,
            user_rpm=args.user_rpm,
            user_tpm=args.user_tpm,
            user_daily_tokens=args.user_daily_tokens,
            expires=args.expires,
        )
        key, record = store.create(spec)
        print(_line(record))
        print(key)
    elif args.keys_command == "list":
        records = store.records()
        if args.json:
            print(json.dumps([r.model_dump(mode="json", exclude={"digest"}) for r in records]))
        for record in records if not args.json else ():
            print(_line(record))
    elif args.keys_command == "revoke":
        print(_line(store.revoke(args.key_id)))
    else:
        key, record = store.rotate(args.key_id)
        print(_line(record))
        print(key)
    return 0
