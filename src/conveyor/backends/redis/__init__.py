"""The distributed backend: Redis (or any server speaking its protocol), atomic Lua scripts."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .backend import RedisBackend


def split_prefix(url: str) -> tuple[str, str | None]:
    """Take Conveyor's own `?prefix=` out of a Redis URL; redis-py would refuse it."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [v for k, v in query if k == "prefix"]
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit(parts._replace(query=rest)), (prefixes[-1] if prefixes else None)


__all__ = ["RedisBackend", "split_prefix"]
