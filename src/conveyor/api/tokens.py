"""API tokens: random secrets handed out once and kept only as SHA-256 hashes.

A token reads `cvy_<id>_<secret>`. The id is public (it names the token in
`conveyor tokens list` and `revoke`) and finds the row; the secret is 32
random bytes whose hash is compared in constant time. A stolen copy of the
token database therefore grants nothing.

The store is plain `sqlite3` in its own file, apart from the jobs: tokens are
configuration of one deployment, not job data, and must work the same with
either backend. `TokenStorage` is the seam for keeping them elsewhere.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from ..clock import Clock, SystemClock
from ..errors import ConfigurationError

TOKEN_PREFIX = "cvy_"
AUTH_DB_FILENAME = "conveyor-auth.db"
_ID_PATTERN = re.compile(r"[0-9a-f]{12}")
_TOUCH_EVERY = 60.0  # seconds between last_used_at writes, so reads stay reads


class Scope(enum.StrEnum):
    """What a token may do; each scope includes the ones before it."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Scope).index(self)

    def allows(self, needed: Scope) -> bool:
        return self.rank >= needed.rank


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """Everything about a token except its secret."""

    id: str
    name: str
    scope: Scope
    tenant: str | None
    created_at: float
    last_used_at: float | None = None


class TokenStorage(Protocol):
    def create(self, *, scope: Scope, tenant: str | None = None, name: str = "") -> tuple[TokenInfo, str]:
        """Store a new token; returns its record and the token itself, which is never seen again."""
        ...

    def verify(self, token: str) -> TokenInfo | None:
        """The token's record, or None if it is malformed, unknown or revoked."""
        ...

    def list(self) -> list[TokenInfo]: ...

    def revoke(self, token_id: str) -> bool: ...


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def default_auth_db(url: str, env: Mapping[str, str] | None = None) -> Path:
    """`CONVEYOR_AUTH_DB`, else beside the SQLite jobs file, else (Redis) the working directory."""
    env = os.environ if env is None else env
    if env.get("CONVEYOR_AUTH_DB"):
        return Path(env["CONVEYOR_AUTH_DB"])
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :]).parent / AUTH_DB_FILENAME
    return Path(AUTH_DB_FILENAME)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS conveyor_api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    scope TEXT NOT NULL,
    tenant TEXT,
    created_at REAL NOT NULL,
    last_used_at REAL
)
"""


class TokenStore:
    """Tokens in one SQLite file; safe to share between `conveyor serve` processes and the CLI."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.clock: Clock = clock or SystemClock()
        if not self.path.parent.exists():
            raise ConfigurationError(
                f"folder {str(self.path.parent)!r} for the token database does not exist"
            )
        if not self.path.exists():
            # Hashes are not secrets, but names and tenants are nobody else's business.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        with self._connect() as conn:
            conn.execute(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=10)
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def create(self, *, scope: Scope, tenant: str | None = None, name: str = "") -> tuple[TokenInfo, str]:
        scope = Scope(scope)
        if tenant is not None and not tenant.strip():
            raise ConfigurationError("a token's tenant must be a non-empty string")
        if len(name) > 200:
            raise ConfigurationError("a token's name must be at most 200 characters")
        token_id = secrets.token_hex(6)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        info = TokenInfo(token_id, name, scope, tenant, self.clock.now())
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO conveyor_api_tokens (id, name, hash, scope, tenant, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (info.id, info.name, hash_token(token), info.scope.value, info.tenant, info.created_at),
            )
        return info, token

    def verify(self, token: str) -> TokenInfo | None:
        token_id = token_id_of(token)
        if token_id is None:
            return None
        with self._connect() as conn:
            row = conn.execute(
                "SELECT hash, id, name, scope, tenant, created_at, last_used_at"
                " FROM conveyor_api_tokens WHERE id = ?",
                (token_id,),
            ).fetchone()
            if row is None or not hmac.compare_digest(row[0], hash_token(token)):
                return None
            info = _info(row[1:])
            now = self.clock.now()
            if info.last_used_at is None or now - info.last_used_at >= _TOUCH_EVERY:
                conn.execute("UPDATE conveyor_api_tokens SET last_used_at = ? WHERE id = ?", (now, info.id))
                info = replace(info, last_used_at=now)
        return info

    def list(self) -> list[TokenInfo]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, name, scope, tenant, created_at, last_used_at"
                " FROM conveyor_api_tokens ORDER BY created_at, id"
            ).fetchall()
        return [_info(row) for row in rows]

    def revoke(self, token_id: str) -> bool:
        with self._connect() as conn:
            return conn.execute("DELETE FROM conveyor_api_tokens WHERE id = ?", (token_id,)).rowcount > 0


def token_id_of(token: str) -> str | None:
    """The public id part of a well-formed token (`cvy_<id>_<secret>`), else None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    token_id, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not secret or not _ID_PATTERN.fullmatch(token_id):
        return None
    return token_id


def _info(row: Sequence[Any]) -> TokenInfo:
    token_id, name, scope, tenant, created_at, last_used_at = row
    return TokenInfo(
        id=str(token_id),
        name=str(name),
        scope=Scope(str(scope)),
        tenant=None if tenant is None else str(tenant),
        created_at=float(created_at),
        last_used_at=None if last_used_at is None else float(last_used_at),
    )
