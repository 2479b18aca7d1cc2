"""`fleetmon keys create|list|revoke`: the service's API keys.

`create` prints the token once, on stdout (nothing else goes there, so `KEY=$(fleetmon keys create
--role viewer)` works); only its SHA-256 is stored, so a lost token cannot be shown again: revoke it
and create another.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from fleetmon.config import ConfigError, load_settings
from fleetmon.service.auth import Role, create_key, list_keys, revoke_key
from fleetmon.storage.engine import Engine, ensure_schema, make_engine
from fleetmon.storage.errors import StorageError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `keys` command group."""
    keys = subparsers.add_parser("keys", help="API keys of the service (create, list, revoke)")
    sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    p = sub.add_parser("create", help="create a key and print it once")
    p.add_argument("--role", required=True, choices=[r.value for r in Role], help="what the key may do")
    p.add_argument("--name", help="a label (who or what uses the key)")
    _db_options(p)
    p.set_defaults(handler=run_create)

    p = sub.add_parser("list", help="list keys (never their secrets)")
    _db_options(p)
    p.set_defaults(handler=run_list)

    p = sub.add_parser("revoke", help="revoke a key by its id (the part after fm_)")
    p.add_argument("id", help="key id, e.g. 3f9a0c21b7d4")
    _db_options(p)
    p.set_defaults(handler=run_revoke)


def _db_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", metavar="URL", help="database URL (default: the config's, else the SQLite file)"
    )
    parser.add_argument("--config", type=Path, help="fleetmon TOML config (for storage.url)")


def _engine(args: argparse.Namespace) -> Engine:
    url = args.db
    if url is None:
        url = load_settings(args.config).storage.url_value()
    engine = make_engine(url)
    ensure_schema(engine)
    return engine


def _fail(message: str) -> int:
    print(f"fleetmon keys: {message}", file=sys.stderr)
    return 2


def run_create(args: argparse.Namespace) -> int:
    """Create a key; the token goes to stdout, the rest to stderr."""
    try:
        info, token = create_key(_engine(args), Role(args.role), args.name)
    except (ConfigError, StorageError) as exc:
        return _fail(str(exc))
    print(token)
    print(f"created key {info.id} (role {info.role.value}); it is shown only once", file=sys.stderr)
    return 0


def run_list(args: argparse.Namespace) -> int:
    """One line per key: id, role, name, created, last used, revoked."""
    try:
        keys = list_keys(_engine(args))
    except (ConfigError, StorageError) as exc:
        return _fail(str(exc))
    print(f"{'ID':<12}  {'ROLE':<11}  {'CREATED':<20}  {'LAST USED':<20}  {'REVOKED':<20}  NAME")
    for k in keys:
        print(
            f"{k.id:<12}  {k.role.value:<11}  {_when(k.created_at):<20}  {_when(k.last_used_at):<20}  "
            f"{_when(k.revoked_at):<20}  {k.name or ''}"
        )
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    """Revoke a key; exit 1 when no key has that id."""
    try:
        found = revoke_key(_engine(args), args.id)
    except (ConfigError, StorageError) as exc:
        return _fail(str(exc))
    if not found:
        print(f"fleetmon keys: no key with id {args.id!r}", file=sys.stderr)
        return 1
    print(f"revoked key {args.id}")
    return 0


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else "-"
