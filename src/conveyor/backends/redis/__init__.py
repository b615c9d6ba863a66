"""The distributed backend: Redis (or any server speaking its protocol), atomic Lua scripts."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from .backend import RedisBackend


def split_prefix(url: str) -> tuple[str, str | None]:
    """Take Conveyor's own `?prefix=` out of a Redis URL; redis-py would refuse it.

    Everything before the query is kept as written: re-assembling it from its
    parts would turn `unix:///run/redis.sock` into `unix:/run/redis.sock`,
    which redis-py 8.2 and later refuse.
    """
    address, _, query_text = url.partition("?")
    query = parse_qsl(query_text, keep_blank_values=True)
    prefixes = [v for k, v in query if k == "prefix"]
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return (f"{address}?{rest}" if rest else address), (prefixes[-1] if prefixes else None)


__all__ = ["RedisBackend", "split_prefix"]
