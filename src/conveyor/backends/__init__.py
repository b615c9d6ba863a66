"""Storage backends, chosen by URL scheme."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from .base import Backend


def backend_from_url(url: str) -> Backend:
    """`sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `redis://host:port/db`.

    Redis URLs (`redis://`, `rediss://` for TLS, `unix://` for a socket) may end in
    `?prefix=name`; without it the key prefix is `CONVEYOR_PREFIX`, else `conveyor`.
    """
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        raw = url[len("sqlite://") :]
        if not raw.startswith("/") or raw in ("/", "/:memory:"):
            raise ConfigurationError(
                f"bad SQLite URL {url!r}: use sqlite:///relative.db or sqlite:////absolute.db"
                " (in-memory databases cannot be shared between a worker and its producers)"
            )
        path = Path(raw[1:])
        if path.parent and not path.parent.exists():
            raise ConfigurationError(f"folder {str(path.parent)!r} for the SQLite database does not exist")
        from .sqlite import SQLiteBackend

        return SQLiteBackend(str(path))
    if parts.scheme in ("redis", "rediss", "unix"):
        from .redis import RedisBackend, split_prefix

        plain, prefix = split_prefix(url)
        return RedisBackend(plain, prefix=prefix or os.environ.get("CONVEYOR_PREFIX") or "conveyor")
    raise ConfigurationError(
        f"unsupported backend URL {url!r}: expected sqlite:///path.db or redis://host:port/db"
    )


__all__ = ["Backend", "backend_from_url"]
