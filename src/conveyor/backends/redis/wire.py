"""The connection every script call of a backend shares: an asyncio protocol reading with hiredis.

redis-py's async connection reads through a StreamReader and a parser, and its
callers put a timeout task around each round trip; on loopback that costs
about as much as Redis's own work for a small script. Here a reply goes
straight from `data_received` to the future of the call that is next in line,
so a round trip is one write and one callback. Concurrent callers (a worker's
fetch, settle and lease loops, a web app's requests) pipeline on this one
socket instead of taking a connection each; Redis answers in order, so the
futures are kept in the order their commands were written.

A stalled server is noticed by one watchdog per connection, not a timer per
call: when replies are awaited and none has arrived for `ROUND_TRIP_TIMEOUT`,
the connection is closed and every waiting call fails.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import hiredis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.credentials import UsernamePasswordCredentialProvider
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

CONNECT_TIMEOUT = 5.0
ROUND_TRIP_TIMEOUT = 30.0  # seconds without a reply while replies are awaited


class Wire(asyncio.Protocol):
    """One Redis connection; `send` writes commands and returns a future per reply."""

    def __init__(self, where: str) -> None:
        self._where = where
        self._reader = hiredis.Reader(encoding="utf-8", replyError=ResponseError)
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._transport: asyncio.Transport | None = None
        self._lost: Exception | None = None
        self._writable: asyncio.Future[None] | None = None  # set while the transport's buffer is full
        self._watchdog: asyncio.TimerHandle | None = None
        self._heard_at = 0.0  # when a reply last arrived, or the first of a batch was awaited

    @property
    def usable(self) -> bool:
        return self._lost is None and self._transport is not None

    # protocol callbacks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        waiting = self._waiting
        try:
            while waiting and (reply := self._reader.gets()) is not False:
                future = waiting.popleft()
                if not future.done():  # its caller may have been cancelled: the reply is dropped
                    future.set_result(reply)
        except hiredis.ProtocolError as exc:
            self._fail(RedisConnectionError(f"Redis at {self._where} sent a malformed reply: {exc}"))
            return
        self._heard_at = asyncio.get_running_loop().time()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f": {exc}" if exc else ""
        self._fail(RedisConnectionError(f"connection to Redis at {self._where} lost{reason}"))

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # calls ---------------------------------------------------------------------------------

    def send(self, packed: Sequence[bytes]) -> list[asyncio.Future[Any]]:
        """Write packed commands; their replies' futures, in order (an error reply is a ResponseError)."""
        if self._lost is not None:
            raise self._lost
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in packed]
        if not self._waiting:
            self._heard_at = loop.time()
        self._waiting.extend(futures)
        self._transport.writelines(packed)
        if self._watchdog is None:
            self._watchdog = loop.call_at(self._heard_at + ROUND_TRIP_TIMEOUT, self._check)
        return futures

    async def writable(self) -> None:
        """Wait while the socket's send buffer is full, so a bulk call's memory stays bounded."""
        if self._writable is not None:
            await asyncio.shield(self._writable)

    async def call(self, *command: str | int | float) -> Any:
        """One command's reply; an error reply is raised."""
        (future,) = self.send([hiredis.pack_command(cast(Any, command))])  # its stub wants a 1-tuple
        reply = await future
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    def close(self) -> None:
        self._fail(RedisConnectionError(f"connection to Redis at {self._where} closed"))

    def _check(self) -> None:
        self._watchdog = None
        if not self._waiting or self._lost is not None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() - self._heard_at >= ROUND_TRIP_TIMEOUT:
            silent = f"no reply from Redis at {self._where} in {ROUND_TRIP_TIMEOUT:g}s"
            self._fail(RedisTimeoutError(silent))
        else:
            self._watchdog = loop.call_at(self._heard_at + ROUND_TRIP_TIMEOUT, self._check)

    def _fail(self, error: Exception) -> None:
        """Close for good: every waiting call gets `error`, later sends raise it."""
        if self._lost is None:
            self._lost = error
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(self._lost)
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)  # a writer waiting for room finds the failure on its next send
        if self._transport is not None:
            self._transport.abort()


async def connect(settings: Connection, where: str) -> Wire:
    """A connected, authenticated Wire to the server `settings` (redis-py's parse of the URL) names.

    Raises redis-py's ConnectionError for an unreachable or untrusted server, so
    callers translate it like any other connection failure.
    """
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            if isinstance(settings, UnixDomainSocketConnection):
                _, wire = await loop.create_unix_connection(lambda: Wire(where), settings.path)
            else:
                tls = settings.ssl_context.get() if isinstance(settings, SSLConnection) else None
                _, wire = await loop.create_connection(
                    lambda: Wire(where), settings.host, settings.port, ssl=tls
                )
    except (OSError, ssl.SSLError, TimeoutError) as exc:
        raise RedisConnectionError(f"cannot connect to Redis at {where}: {exc}") from exc
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            await _handshake(wire, settings)
    except BaseException:
        wire.close()
        raise
    return wire


async def _handshake(wire: Wire, settings: Connection) -> None:
    provider = settings.credential_provider
    if provider is None and (settings.username or settings.password):
        provider = UsernamePasswordCredentialProvider(settings.username, settings.password)
    if provider is not None:
        await wire.call("AUTH", *await provider.get_credentials_async())
    if settings.client_name:
        await wire.call("CLIENT", "SETNAME", settings.client_name)
    if settings.db:
        await wire.call("SELECT", settings.db)
