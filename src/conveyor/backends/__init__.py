"""Storage backends, chosen by URL scheme."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..errors import ConfigurationError
from ..events import DEFAULT_EVENTS_MAX
from .base import Backend


def backend_from_url(url: str) -> Backend:
    """`sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `redis://host:port/db`.

    Redis URLs (`redis://`, `rediss://` for TLS, `unix://` for a socket) may end in
    `?prefix=name`; without it the key prefix is `CONVEYOR_PREFIX`, else `conveyor`.
    Either kind may carry `events_max=N`, the bound of the job event stream (else
    `CONVEYOR_EVENTS_MAX`, else 10,000).
    """
    url, events_max = _split_events_max(url)
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

        return SQLiteBackend(str(path), events_max=events_max)
    if parts.scheme in ("redis", "rediss", "unix"):
        from .redis import RedisBackend, split_prefix

        plain, prefix = split_prefix(url)
        return RedisBackend(
            plain, prefix=prefix or os.environ.get("CONVEYOR_PREFIX") or "conveyor", events_max=events_max
        )
    raise ConfigurationError(
        f"unsupported backend URL {url!r}: expected sqlite:///path.db or redis://host:port/db"
    )


def _split_events_max(url: str) -> tuple[str, int]:
    """Take Conveyor's own `events_max` query parameter out of a URL (neither driver knows it)."""
    head, _, query_text = url.partition("?")
    query = parse_qsl(query_text, keep_blank_values=True)
    given = [v for k, v in query if k == "events_max"] or [os.environ.get("CONVEYOR_EVENTS_MAX", "")]
    rest = urlencode([(k, v) for k, v in query if k != "events_max"])
    raw = given[-1] or str(DEFAULT_EVENTS_MAX)
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigurationError(f"events_max must be a whole number of at least 1, got {raw!r}")
    return (f"{head}?{rest}" if rest else head), int(raw)


__all__ = ["Backend", "backend_from_url"]
