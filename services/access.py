"""`python -m services access ...`: API keys and user accounts, written to all four schemas.

Every service keeps its own copy of the principals in its own schema (services never read each
other's tables), so this command writes each change to all of them in one transaction, as the
admin role (like provisioning).
"""

import argparse
import asyncio
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from services.catalog import CATALOG
from services.environment import StackConfig
from shared.auth.keys import KEY_PREFIX, NewKey, new_key
from shared.auth.passwords import hash_password
from shared.auth.principal import MACHINE_ROLES, PEOPLE_ROLES, Role
from shared.time import utcnow

SCHEMAS = tuple(entry.schema for entry in CATALOG)
MACHINE_ROLE_NAMES = sorted(role.value for role in MACHINE_ROLES)
PEOPLE_ROLE_NAMES = sorted(role.value for role in PEOPLE_ROLES)


@dataclass(frozen=True)
class CreatedKey:
    """A key as shown once to the operator."""

    key: NewKey
    role: Role
    name: str
    merchant_id: str | None
    storefront_id: str | None


async def _connect(config: StackConfig) -> asyncpg.Connection:
    return await asyncpg.connect(config.admin_dsn(config.pg_database))


async def create_key(
    config: StackConfig,
    *,
    role: Role,
    name: str,
    merchant_id: str | None = None,
    storefront_id: str | None = None,
) -> CreatedKey:
    """Makes an API key for a storefront or a merchant and stores its hash in every schema."""
    if role not in MACHINE_ROLES:
        raise ValueError("API keys are for storefront and merchant callers; people use accounts")
    if role is Role.MERCHANT and not merchant_id:
        raise ValueError("a merchant key needs --merchant")
    if role is Role.STOREFRONT:
        storefront_id = storefront_id or name
        merchant_id = None
    else:
        storefront_id = None
    key = new_key()
    conn = await _connect(config)
    try:
        async with conn.transaction():
            for schema in SCHEMAS:
                await conn.execute(
                    f'INSERT INTO "{schema}".api_keys (key_id, secret_sha256, role, merchant_id, '
                    "storefront_id, name, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    key.key_id,
                    key.secret_sha256,
                    role.value,
                    merchant_id,
                    storefront_id,
                    name,
                    utcnow(),
                )
    finally:
        await conn.close()
    return CreatedKey(key, role, name, merchant_id, storefront_id)


async def create_user(
    config: StackConfig,
    *,
    username: str,
    password: str,
    role: Role,
    teams: list[str],
) -> None:
    """Creates (or resets the password and teams of) a person's account in every schema."""
    if role not in PEOPLE_ROLES:
        raise ValueError("accounts are for agents, supervisors and admins; machines use keys")
    if role in (Role.AGENT, Role.SUPERVISOR) and not teams:
        raise ValueError(f"an {role.value} needs at least one --team")
    password_hash = hash_password(password)
    conn = await _connect(config)
    try:
        async with conn.transaction():
            for schema in SCHEMAS:
                await conn.execute(
                    f'INSERT INTO "{schema}".users (username, password_hash, role, teams, '
                    "disabled, created_at) VALUES ($1, $2, $3, $4, false, $5) "
                    "ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, "
                    "role = excluded.role, teams = excluded.teams, disabled = false",
                    username,
                    password_hash,
                    role.value,
                    teams,
                    utcnow(),
                )
    finally:
        await conn.close()


async def revoke(config: StackConfig, what: str) -> str:
    """Revokes a key (by `cpk_<id>` prefix, id or full key) or disables a user; what it did."""
    key_id = what.removeprefix(KEY_PREFIX).split("_", 1)[0]
    conn = await _connect(config)
    try:
        async with conn.transaction():
            keys = users = "UPDATE 0"
            for schema in SCHEMAS:
                keys = await conn.execute(
                    f'UPDATE "{schema}".api_keys SET revoked_at = $2 '
                    "WHERE key_id = $1 AND revoked_at IS NULL",
                    key_id,
                    utcnow(),
                )
                users = await conn.execute(
                    f'UPDATE "{schema}".users SET disabled = true WHERE username = $1', what
                )
    finally:
        await conn.close()
    if keys != "UPDATE 0":
        return f"revoked key {KEY_PREFIX}{key_id} (in effect within the key cache TTL)"
    if users != "UPDATE 0":
        return f"disabled user {what} (tokens already issued expire on their own)"
    raise LookupError(f"no active key or user named {what!r}")


async def list_principals(config: StackConfig) -> dict[str, list[dict[str, Any]]]:
    """Keys (prefix only, never a secret) and users, as intake's schema holds them."""
    schema = SCHEMAS[0]
    conn = await _connect(config)
    try:
        keys = await conn.fetch(
            f'SELECT key_id, role, merchant_id, storefront_id, name, created_at, revoked_at FROM "{schema}".api_keys ORDER BY created_at'  # noqa: E501
        )
        users = await conn.fetch(
            f'SELECT username, role, teams, disabled, created_at FROM "{schema}".users '
            "ORDER BY username"
        )
    finally:
        await conn.close()
    return {
        "keys": [
            {
                "prefix": f"{KEY_PREFIX}{row['key_id']}",
                "role": row["role"],
                "merchant_id": row["merchant_id"],
                "storefront_id": row["storefront_id"],
                "name": row["name"],
                "created_at": row["created_at"].isoformat(),
                "revoked_at": row["revoked_at"].isoformat() if row["revoked_at"] else None,
            }
            for row in keys
        ],
        "users": [
            {
                "username": row["username"],
                "role": row["role"],
                "teams": list(row["teams"]),
                "disabled": row["disabled"],
            }
            for row in users
        ],
    }


# --- development credentials (make up) ------------------------------------------------------

DEV_STOREFRONT = "sf-dev"
DEV_MERCHANT = "m-4471"
DEV_AGENT = "dev-agent"
DEV_AGENT_TEAMS = ["merchant_management", "cs_quality", "logistics", "intake_review"]


def ensure_dev_credentials(config: StackConfig, path: Path) -> dict[str, str]:
    """A storefront key, a merchant key and an agent account for local use, made once.

    Secrets are shown once and stored hashed, so the local copy lives in `path` (under .run/,
    never committed). When that file is gone or its keys no longer work, the old development
    keys are revoked and new ones made.
    """
    if path.exists():
        saved: dict[str, str] = json.loads(path.read_text())
        if asyncio.run(_dev_credentials_valid(config, saved)):
            return saved
    saved = asyncio.run(_make_dev_credentials(config))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved, indent=2))
    path.chmod(0o600)
    return saved


async def _make_dev_credentials(config: StackConfig) -> dict[str, str]:
    conn = await _connect(config)
    try:
        for schema in SCHEMAS:
            await conn.execute(
                f'UPDATE "{schema}".api_keys SET revoked_at = $1 '
                "WHERE name IN ('dev-storefront', 'dev-merchant') AND revoked_at IS NULL",
                utcnow(),
            )
    finally:
        await conn.close()
    storefront = await create_key(
        config, role=Role.STOREFRONT, name="dev-storefront", storefront_id=DEV_STOREFRONT
    )
    merchant = await create_key(
        config, role=Role.MERCHANT, name="dev-merchant", merchant_id=DEV_MERCHANT
    )
    password = secrets.token_urlsafe(12)
    await create_user(
        config, username=DEV_AGENT, password=password, role=Role.AGENT, teams=DEV_AGENT_TEAMS
    )
    return {
        "STOREFRONT_KEY": storefront.key.secret,
        "MERCHANT_KEY": merchant.key.secret,
        "MERCHANT_ID": DEV_MERCHANT,
        "AGENT_USER": DEV_AGENT,
        "AGENT_PASSWORD": password,
    }


async def _dev_credentials_valid(config: StackConfig, saved: dict[str, str]) -> bool:
    conn = await _connect(config)
    try:
        for name in ("STOREFRONT_KEY", "MERCHANT_KEY"):
            key_id = saved.get(name, "").removeprefix(KEY_PREFIX).split("_", 1)[0]
            for schema in SCHEMAS:
                if not await conn.fetchval(
                    f'SELECT 1 FROM "{schema}".api_keys WHERE key_id = $1 AND revoked_at IS NULL',
                    key_id,
                ):
                    return False
        for schema in SCHEMAS:
            if not await conn.fetchval(
                f'SELECT 1 FROM "{schema}".users WHERE username = $1 AND NOT disabled', DEV_AGENT
            ):
                return False
    finally:
        await conn.close()
    return True


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """The `access` command and its subcommands."""
    access = sub.add_parser("access", help="API keys and user accounts (all four schemas)")
    commands = access.add_subparsers(dest="access_command", required=True)
    key = commands.add_parser("create-key", help="make an API key (shown once)")
    key.add_argument("--role", required=True, choices=MACHINE_ROLE_NAMES)
    key.add_argument("--name", required=True, help="who it is for, e.g. shop-web-prod")
    key.add_argument("--merchant", help="the merchant_id a merchant key is bound to")
    key.add_argument("--storefront", help="the storefront id (default: --name)")
    user = commands.add_parser("create-user", help="create or reset a person's account")
    user.add_argument("--username", required=True)
    user.add_argument("--role", required=True, choices=PEOPLE_ROLE_NAMES)
    user.add_argument("--team", action="append", default=[], help="repeat for several teams")
    user.add_argument("--password", help="default: generate one and print it")
    rev = commands.add_parser("revoke", help="revoke a key (cpk_<id>) or disable a user")
    rev.add_argument("what")
    commands.add_parser("list", help="keys (prefixes only) and users")
    dev = commands.add_parser("dev", help="make up: development credentials, created if missing")
    dev.add_argument("--file", default=".run/dev-credentials.json")


def run(args: argparse.Namespace, config: StackConfig) -> int:
    """Runs one `access` subcommand."""
    command = args.access_command
    try:
        if command == "create-key":
            created = asyncio.run(
                create_key(
                    config,
                    role=Role(args.role),
                    name=args.name,
                    merchant_id=args.merchant,
                    storefront_id=args.storefront,
                )
            )
            scope = created.merchant_id or created.storefront_id
            print(f"created {created.role.value} key {created.key.prefix} for {scope}")
            print(f"key (shown once, store it now): {created.key.secret}")
        elif command == "create-user":
            password = args.password or secrets.token_urlsafe(12)
            asyncio.run(
                create_user(
                    config,
                    username=args.username,
                    password=password,
                    role=Role(args.role),
                    teams=args.team,
                )
            )
            print(f"user {args.username} ({args.role}; teams: {', '.join(args.team) or '-'})")
            if not args.password:
                print(f"password (shown once): {password}")
        elif command == "revoke":
            print(asyncio.run(revoke(config, args.what)))
        elif command == "list":
            print(json.dumps(asyncio.run(list_principals(config)), indent=2))
        elif command == "dev":
            saved = ensure_dev_credentials(config, Path(args.file))
            for name, value in saved.items():
                print(f"export {name}={value}")
    except (ValueError, LookupError) as exc:
        print(f"access {command}: {exc}")
        return 2
    except asyncpg.UndefinedTableError as exc:
        print(f"access {command}: {exc}; run the migrations first (make migrate)")
        return 2
    return 0
