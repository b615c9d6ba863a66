"""The shared script connection (backends/redis/wire.py): order, loss, reconnection, a silent server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio.connection import Connection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from conveyor import Conveyor, FakeClock
from conveyor.backends.redis import RedisBackend, wire
from conveyor.backends.redis.keys import KeyLayout
from conveyor.backends.redis.store import Store

from .redis_server import RedisServer


def settings_for(url: str) -> Connection:
    connection: Connection = ConnectionPool.from_url(url).make_connection()
    return connection


async def test_concurrent_callers_each_get_their_own_replies(redis_server: RedisServer) -> None:
    conn = await wire.connect(settings_for(redis_server.url()), "test")
    try:
        replies = await asyncio.gather(*(conn.call("ECHO", f"caller {n}") for n in range(200)))
        assert replies == [f"caller {n}" for n in range(200)]
        with pytest.raises(ResponseError, match="unknown command"):
            await conn.call("NO-SUCH-COMMAND")
        assert await conn.call("PING") == "PONG"  # an error reply leaves the connection in step
    finally:
        conn.close()


async def test_after_the_server_drops_the_connection_the_next_call_reconnects(
    redis_url: str, redis_server: RedisServer
) -> None:
    app = Conveyor(redis_url, clock=FakeClock())

    @app.job("catalog:ping")
    async def ping() -> None: ...

    backend = await app.backend()
    assert isinstance(backend, RedisBackend)
    await ping.enqueue()
    with redis_server.client() as client:
        killed = client.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1
    await asyncio.sleep(0.1)  # the loop sees the connection closed
    job = await ping.enqueue()  # enqueue goes through the wire alone
    await app.close()
    with redis_server.client() as client:
        assert client.exists(f"{backend.layout.queue('default')}:job:{job.id}") == 1


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never answers."""
    peers: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for peer in peers:
        peer.close()
    server.close()
    await server.wait_closed()


async def test_a_server_that_stops_answering_fails_the_waiting_calls(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wire, "ROUND_TRIP_TIMEOUT", 0.2)
    conn = await wire.connect(settings_for(f"redis://127.0.0.1:{silent_server}/0"), "silent")
    calls = [asyncio.ensure_future(conn.call("PING")) for _ in range(3)]
    done, _ = await asyncio.wait(calls, timeout=5)
    assert len(done) == 3
    for call in calls:
        with pytest.raises(RedisTimeoutError, match=r"no reply from Redis at silent in 0\.2s"):
            call.result()
    assert not conn.usable
    with pytest.raises(RedisTimeoutError):
        conn.send([b"*1\r\n$4\r\nPING\r\n"])


async def test_a_store_closed_mid_call_fails_the_call(redis_server: RedisServer) -> None:
    store = Store(redis_server.url(), KeyLayout("closing"), events_max=100)
    await store.open()
    blocked = asyncio.ensure_future(store.run([("BLPOP", "{closing}:nothing", 5)]))
    await asyncio.sleep(0.05)
    await store.close()
    with pytest.raises(RedisConnectionError, match="closed"):
        await blocked
