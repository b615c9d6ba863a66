"""The Redis connections, the Lua scripts, error translation and the id -> queue lookup.

The scripts form one Redis function library (Redis 7), loaded once and
called with FCALL: the shared code in common.lua is compiled and its helper
functions created at load, not on every call as a prelude sent with EVAL
would be. The library's name carries a hash of its source, so two Conveyor
versions on one server (a rolling deploy) each call their own. A server that
lost its functions (a restart without persistence, FUNCTION FLUSH) answers
"Function not found", and exactly the calls that got that answer are sent
again after a reload.

Script calls go over one shared `Wire` (wire.py), not redis-py's client: its
per-call pool checks, locks and read layers cost more than the round trip on
loopback. The redis-py client remains for plain reads, blocking reads and
pub/sub.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from hiredis import pack_command
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ...errors import BackendError, BackendUnavailable
from .keys import KeyLayout
from .wire import CONNECT_TIMEOUT, ROUND_TRIP_TIMEOUT, Wire, connect

MAX_CONNECTIONS = 64
"""Connections to Redis one process opens at most for its plain commands (scripts share one Wire)."""

P = ParamSpec("P")
T = TypeVar("T")
Arg = str | int | float
Command = tuple[Arg, ...]  # a plain Redis command: ("HSET", key, field, value)
SCRIPTS = [
    *("enqueue", "fetch", "settle", "renew", "recover", "cancel", "retry", "remove"),
    *("cleanup", "progress", "log", "pause", "resume", "heartbeat", "unregister"),
    *("tell_parent", "cancel_kids", "born", "ack", "bag", "phases"),
    *("schedule_put", "schedule_tick", "schedule_drop", "key_fact", "key_apply"),
]
MAX_CACHED_IDS = 100_000
MAX_IN_FLIGHT = 20  # a bulk call's script calls sent before it waits for a reply
SEND_BYTES = 16 * 1024  # a call's commands are written once this much is packed, or at its end


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


@dataclass(frozen=True, slots=True)
class Script:
    """One call of a Lua script in `lua/`: KEYS[1] is `base`, ARGV is `args`."""

    name: str
    base: str
    args: Sequence[Arg] = ()


def _library(events_max: int) -> tuple[str, dict[str, str]]:
    """The library's source and the function name of each script."""
    folder = resources.files(__package__).joinpath("lua")
    shared = "".join(
        folder.joinpath(f"{part}.lua").read_text("utf-8") for part in ("common", "limits", "dedup")
    )
    bodies = {name: folder.joinpath(f"{name}.lua").read_text("utf-8") for name in SCRIPTS}
    code = f"local EVENTS_MAX = {int(events_max)}\n{shared}"
    code += "".join(
        f"redis.register_function('{{lib}}_{name}', function(keys, args)\nbegin(keys, args)\n{body}end)\n"
        for name, body in bodies.items()
    )
    lib = "conveyor_" + hashlib.sha1(code.encode()).hexdigest()[:12]
    source = f"#!lua name={lib}\n" + code.replace("{lib}", lib)
    return source, {name: f"{lib}_{name}" for name in SCRIPTS}


class Store:
    """What every backend operation needs, apart from what it means: connections, scripts, lookups."""

    def __init__(self, url: str, keys: KeyLayout, *, events_max: int) -> None:
        self.url = url
        self.where = redacted(url)
        self.keys = keys
        self._library, self._functions = _library(events_max)
        self._client: aioredis.Redis | None = None
        # redis-py's reading of the URL (host, TLS, credentials, db), for the Wire to connect with.
        make: Callable[[], Connection] = aioredis.ConnectionPool.from_url(url).make_connection
        self._settings = make()  # redis-py leaves make_connection untyped in some releases
        self._wire: Wire | None = None
        self._connecting = asyncio.Lock()
        # A job's queue never changes and ids are never reused, so a cached entry is never wrong.
        self._queue_of: dict[str, str] = {}
        self.known_queues: set[str] = set()

    @property
    def client(self) -> aioredis.Redis:
        if self._client is None:
            raise BackendError("the Redis backend is not open")
        return self._client

    async def open(self) -> None:
        # No automatic retries: a script sent twice after a lost reply would run twice.
        # The worker retries failed backend calls itself (they raise BackendError).
        # A blocking pool: past MAX_CONNECTIONS calls in flight (an API serving many requests
        # and live views at once), a call waits its turn for a connection instead of failing
        # at once, which redis-py's default pool (100, then "Too many connections") does.
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url,
            max_connections=MAX_CONNECTIONS,
            timeout=ROUND_TRIP_TIMEOUT,
            decode_responses=True,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=ROUND_TRIP_TIMEOUT,
        )
        self._client = aioredis.Redis.from_pool(pool)  # the client owns the pool and closes it
        try:
            await self.load_scripts()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._wire is not None:
            self._wire.close()  # calls still waiting on it fail as on a lost connection
            self._wire = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def load_scripts(self) -> None:
        try:
            await self.client.function_load(self._library, replace=True)
        except ResponseError as exc:
            if "unknown command" not in str(exc).lower():
                raise
            raise BackendError(
                f"Redis at {self.where} has no FUNCTION command: Conveyor needs Redis 7.0 or later"
            ) from exc

    # scripts ------------------------------------------------------------------------------

    async def run(self, items: Iterable[Script | Command]) -> list[Any]:
        """Send script calls (and plain commands) in order; return the scripts' results.

        Items are written together once SEND_BYTES are packed or at the end, and
        a bulk call waits for a reply once MAX_IN_FLIGHT of its scripts are
        outstanding. So a small call is one write and one round trip, a bulk call
        builds its next chunk while Redis runs the previous one, and memory stays
        bounded.
        """
        wire = self._wire
        if wire is None or not wire.usable:
            wire = await self._connection()
        sent: list[Script | Command] = []
        futures: list[asyncio.Future[Any]] = []
        scripts: list[int] = []  # positions of the scripts in `sent`
        packed: list[bytes] = []
        size = 0
        try:
            for item in items:
                sent.append(item)
                packed.append(pack_command(cast(Any, self._command(item))))  # its stub wants a 1-tuple
                size += len(packed[-1])
                if isinstance(item, Script):
                    scripts.append(len(sent) - 1)
                if size >= SEND_BYTES:
                    futures += wire.send(packed)
                    packed, size = [], 0
                    await wire.writable()
                    if len(scripts) > MAX_IN_FLIGHT:
                        await futures[scripts[-MAX_IN_FLIGHT - 1]]
            if packed:
                futures += wire.send(packed)
            if futures:
                await futures[-1]  # replies come in order: when the last is in, all are
        except BaseException:
            for future in futures:
                if not future.done():
                    future.cancel()  # its reply, if one comes, is dropped
                elif not future.cancelled():
                    future.exception()  # seen: the failure is raised once, here
            raise
        replies = [future.result() for future in futures]
        if any(isinstance(reply, ResponseError) for reply in replies):
            missing = [i for i, r in enumerate(replies) if _missing_function(r)]
            if missing:
                await self.load_scripts()
                again = await self.run([sent[i] for i in missing])
                for i, reply in zip(missing, again, strict=True):
                    replies[i] = reply
            for reply in replies:
                if isinstance(reply, ResponseError):
                    raise reply
        return [reply for item, reply in zip(sent, replies, strict=True) if isinstance(item, Script)]

    async def _connection(self) -> Wire:
        """The shared Wire, connected again if it was lost (callers then retry their work)."""
        if self._client is None:
            raise BackendError("the Redis backend is not open")
        async with self._connecting:
            if self._wire is None or not self._wire.usable:
                self._wire = await connect(self._settings, self.where)
            return self._wire

    def _command(self, item: Script | Command) -> Command:
        if isinstance(item, Script):
            return ("FCALL", self._functions[item.name], 1, item.base, *item.args)
        return item

    def storing(self, queue: str, job_ids: Iterable[str], args: Sequence[Arg]) -> tuple[Command, Script]:
        """The calls that store new jobs of one queue (`args` from records.py's enqueue_args).

        Their queue is recorded first, so no reader finds a job it cannot locate.
        """
        register = ("HSET", self.keys.ids, *(field for job_id in job_ids for field in (job_id, queue)))
        return register, Script("enqueue", self.keys.queue(queue), args)

    def unregister(self, job_ids: Iterable[str]) -> Command:
        """Drop the queue recorded for jobs turned away by enqueue.lua, or removed."""
        return ("HDEL", self.keys.ids, *job_ids)

    # id -> queue --------------------------------------------------------------------------

    def remember(self, job_id: str, queue: str) -> None:
        if len(self._queue_of) >= MAX_CACHED_IDS:
            self._queue_of.clear()
        self._queue_of[job_id] = queue

    def forget(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            self._queue_of.pop(job_id, None)

    async def queues_of(self, job_ids: Sequence[str]) -> dict[str, str]:
        """The queue of each existing job (a stale entry for a removed job is harmless)."""
        found = {i: self._queue_of[i] for i in job_ids if i in self._queue_of}
        unknown = [i for i in dict.fromkeys(job_ids) if i not in found]
        if unknown:
            queues = await _reply(list[str | None], self.client.hmget(self.keys.ids, unknown))
            found.update({i: q for i, q in zip(unknown, queues, strict=True) if q is not None})
        return found

    async def queue_of(self, job_id: str) -> str | None:
        return (await self.queues_of([job_id])).get(job_id)

    async def all_queues(self) -> list[str]:
        return sorted(await _reply(set[str], self.client.smembers(self.keys.queues)))

    # typed reads (the client decodes replies to str) ---------------------------------------

    async def hgetall(self, key: str) -> dict[str, str]:
        return await _reply(dict[str, str], self.client.hgetall(key))

    async def hvals(self, key: str) -> list[str]:
        return await _reply(list[str], self.client.hvals(key))

    async def lrange(self, key: str, start: int, end: int) -> list[str]:
        return await _reply(list[str], self.client.lrange(key, start, end))


def _missing_function(reply: Any) -> bool:
    return isinstance(reply, ResponseError) and str(reply).startswith("ERR Function not found")


async def _reply(kind: type[T], reply: Awaitable[Any] | Any) -> T:
    """A command's reply as `kind`: redis-py types commands as `Awaitable[T] | T`, sync or async."""
    return cast(T, await reply)


def cancel_count() -> int:
    task = asyncio.current_task()
    return 0 if task is None else task.cancelling()


def restore_cancel(before: int) -> None:
    """Raise a cancellation that arrived during a Redis call but was swallowed.

    CPython 3.11's `asyncio.wait_for` (which redis-py uses for socket timeouts)
    returns the result and drops a cancellation that lands as the call
    completes; a worker stopping its loops would then wait forever.
    """
    if cancel_count() > before:
        raise asyncio.CancelledError


class _Located(Protocol):
    where: str  # the server's URL without its password


L = TypeVar("L", bound=_Located)


def translate_errors(
    method: Callable[Concatenate[L, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[L, P], Coroutine[Any, Any, T]]:
    """Raise Conveyor's errors, so callers (the worker's retry loops) need not know Redis."""

    @functools.wraps(method)
    async def wrapper(located: L, /, *args: P.args, **kwargs: P.kwargs) -> T:
        before = cancel_count()
        try:
            result = await method(located, *args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError, TimeoutError) as exc:
            restore_cancel(before)
            raise BackendUnavailable(f"Redis at {located.where} is unreachable: {exc}") from exc
        except RedisError as exc:
            restore_cancel(before)
            raise BackendError(f"Redis at {located.where} refused an operation: {exc}") from exc
        restore_cancel(before)
        return result

    return wrapper
