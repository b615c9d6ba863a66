"""What only the Redis backend has: URLs and prefixes, key layout, wake-ups, connection loss.

Everything else it shares with SQLite is in tests/conformance/.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from conveyor import (
    BackendUnavailable,
    ConfigurationError,
    Conveyor,
    FakeClock,
    JobContext,
    JobFilter,
    JobState,
)
from conveyor.backends import backend_from_url
from conveyor.backends.redis import RedisBackend, split_prefix
from conveyor.backends.redis.keys import KeyLayout
from conveyor.job import NewJob, new_job_id

from .redis_server import RedisServer, free_port


def prefix_of(url: str) -> str:
    backend = backend_from_url(url)
    assert isinstance(backend, RedisBackend)
    return backend.layout.prefix


# URLs and prefixes -------------------------------------------------------------------------


def test_prefix_comes_from_the_url_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVEYOR_PREFIX", raising=False)
    assert prefix_of("redis://127.0.0.1:6379/0") == "conveyor"
    monkeypatch.setenv("CONVEYOR_PREFIX", "shop-eu")
    assert prefix_of("redis://127.0.0.1:6379/0") == "shop-eu"
    assert prefix_of("rediss://127.0.0.1:6380/1?prefix=shop-us&ssl_cert_reqs=none") == "shop-us"
    assert prefix_of("unix:///run/redis.sock?prefix=local") == "local"


def test_conveyor_prefix_leaves_the_rest_of_the_url_as_written() -> None:
    sock = "unix:///run/redis.sock"
    assert split_prefix(f"{sock}?prefix=local&db=2") == (f"{sock}?db=2", "local")
    assert split_prefix(sock) == (sock, None)
    tcp = "redis://:p%40ss@127.0.0.1:6379/3"
    assert split_prefix(f"{tcp}?prefix=a") == (tcp, "a")


@pytest.fixture(scope="module")
def socket_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis-unix"), unix_socket=True)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("query", "db", "prefix"),
    [("", 0, "conveyor"), ("?prefix=sock", 0, "sock"), ("?db=2&prefix=s2", 2, "s2")],
)
async def test_jobs_run_over_a_unix_socket_url(
    socket_server: RedisServer, monkeypatch: pytest.MonkeyPatch, query: str, db: int, prefix: str
) -> None:
    """The URL form no other test connects with, in each of its spellings the docs name."""
    monkeypatch.delenv("CONVEYOR_PREFIX", raising=False)
    app = Conveyor(socket_server.unix_url(query), clock=FakeClock())

    @app.job("catalog:ping")
    async def ping(sku: str) -> str:
        return f"pong {sku}"

    ids = await app.enqueue_many("catalog:ping", [{"sku": f"p{n}"} for n in range(5)])
    summary = await app.worker(burst=True).run()
    done = await app.get_job(ids[3])
    await app.close()
    assert summary.outcomes == {"complete": 5}
    assert done.result == "pong p3"
    with redis.Redis(unix_socket_path=str(socket_server.socket), db=db) as client:
        owned = [key for key in client.scan_iter() if KeyLayout(prefix).owns(key.decode())]
        assert owned, f"no keys under prefix {prefix!r} in database {db}, which the URL names"
        client.flushall()


def test_prefix_that_could_collide_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must be 1-64 letters"):
        backend_from_url("redis://127.0.0.1:6379/0?prefix=a:b")


async def test_unreachable_server_is_backend_unavailable_without_the_password() -> None:
    port = free_port()  # nothing listens there
    app = Conveyor(f"redis://:hunter2@127.0.0.1:{port}/0")
    with pytest.raises(BackendUnavailable) as info:
        await app.backend()
    assert str(info.value).startswith(f"Redis at redis://:***@127.0.0.1:{port}/0 is unreachable: ")
    assert "hunter2" not in str(info.value)


async def test_password_urls_work(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, password="s3cret")
    server.start()
    try:
        app = Conveyor(server.url("pw"), clock=FakeClock())

        @app.job("catalog:ping")
        async def ping() -> str:
            return "pong"

        job = await ping.enqueue()
        await app.worker(burst=True).run()
        assert (await app.get_job(job.id)).result == "pong"
        await app.close()
        wrong = Conveyor(f"redis://:nope@127.0.0.1:{server.port}/0")
        with pytest.raises(BackendUnavailable):
            await wrong.backend()
    finally:
        server.stop()


# key layout --------------------------------------------------------------------------------


async def busy_app(url: str) -> Conveyor:
    """An app that has touched every kind of key: dedup, tenants, delays, errors, logs, pause."""
    app = Conveyor(url, clock=FakeClock())

    @app.job("images:upload", queue="images", attempts=2, backoff=[60])
    async def upload(ctx: JobContext, n: int) -> None:
        ctx.log(f"uploading {n}")
        if n % 2:
            raise ValueError("odd image")

    @app.job("families:sync", queue="product-family")
    async def sync() -> None: ...

    await upload.options(tenant="store-1").enqueue_many({"n": n} for n in range(6))
    await upload.options(dedup_key="img-9").enqueue(n=9)
    await sync.options(delay=30).enqueue()
    await app.worker(burst=True).run()
    await app.pause("product-family")
    return app


async def test_every_key_of_a_queue_shares_one_cluster_slot(
    redis_url: str, redis_server: RedisServer
) -> None:
    app = await busy_app(redis_url)
    await app.close()
    layout = KeyLayout(prefix_of(redis_url))
    per_queue = re.compile(
        re.escape("{" + layout.prefix + ":")
        + r"(?P<queue>[^}]+)\}:"
        + r"(ready|scheduled|running|finished|jobs|seq|counts|dedup|paused|events"
        + r"|(job|errors|logs|tenant):.+)$"
    )
    global_keys = {layout.queues, layout.ids, layout.workers, layout.workers + ":seen"}
    slots: dict[str, set[int]] = defaultdict(set)
    with redis_server.client() as client:
        keys = list(client.scan_iter(count=1000))
    assert keys
    for key in keys:
        match = per_queue.match(key)
        if match is None:
            assert key in global_keys, f"key outside the documented layout: {key}"
            slots["(global)"].add(key_slot(key.encode()))
        else:
            slots[match["queue"]].add(key_slot(key.encode()))
    assert set(slots) == {"images", "product-family", "(global)"}
    assert all(len(s) == 1 for s in slots.values()), slots
    assert slots["images"] != slots["product-family"]  # queues spread over a cluster


async def test_the_id_registry_holds_only_the_jobs_that_were_stored(
    redis_url: str, redis_server: RedisServer
) -> None:
    """A job turned away by a dedup key was registered before the script ran; it must not stay."""
    app = Conveyor(redis_url, clock=FakeClock())

    @app.job("catalog:sync")
    async def sync(store: str) -> None: ...

    first = await sync.options(dedup_key="store-1").enqueue("a")
    again = await sync.options(dedup_key="store-1").enqueue("b")
    other = await sync.options(queue="images").enqueue("c")
    backend = await app.backend()
    assert isinstance(backend, RedisBackend)
    pair = [NewJob(id=new_job_id(), **fields) for fields in (_fields("store-1"), _fields("store-2"))]
    results = await backend.enqueue(pair)
    await app.close()

    assert again.id == first.id
    assert [r.created for r in results] == [False, True]
    with redis_server.client() as client:
        registered = client.hgetall(KeyLayout(prefix_of(redis_url)).ids)
    assert registered == {first.id: "default", other.id: "images", pair[1].id: "default"}


def _fields(dedup_key: str) -> dict[str, Any]:
    return dict(
        type="catalog:sync",
        queue="default",
        payload_json='{"store": "d"}',
        state=JobState.PENDING,
        priority=3,
        max_attempts=3,
        run_at=0.0,
        created_at=0.0,
        dedup_key=dedup_key,
    )


async def test_lost_functions_are_reloaded(redis_url: str, redis_server: RedisServer) -> None:
    app = Conveyor(redis_url, clock=FakeClock())

    @app.job("catalog:ping")
    async def ping() -> str:
        return "pong"

    await ping.enqueue()
    with redis_server.client() as client:
        client.function_flush()
        assert client.function_list() == []
    job = await ping.enqueue()
    await app.worker(burst=True).run()
    assert (await app.get_job(job.id)).result == "pong"
    await app.close()


async def test_listing_pages_through_several_queues_once_each(redis_url: str) -> None:
    clock = FakeClock()
    app = Conveyor(redis_url, clock=clock)

    @app.job("catalog:a", queue="a")
    async def a(n: int) -> None: ...

    @app.job("catalog:b", queue="b")
    async def b(n: int) -> None: ...

    for n in range(7):
        await (a if n % 3 else b).enqueue(n=n)
        clock.advance(1)
    for oldest_first in (False, True):
        seen: list[int] = []
        cursor = None
        while True:
            page = await app.list_jobs(JobFilter(oldest_first=oldest_first), limit=3, cursor=cursor)
            seen += [j.payload["n"] for j in page.jobs]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == (list(range(7)) if oldest_first else list(range(6, -1, -1)))
    await app.close()


# waking idle workers -----------------------------------------------------------------------


async def test_idle_worker_starts_a_new_job_within_50ms_and_does_not_poll(
    redis_url: str, redis_server: RedisServer
) -> None:
    app = Conveyor(redis_url)
    started: asyncio.Queue[float] = asyncio.Queue()

    @app.job("catalog:ping")
    async def ping() -> None:
        started.put_nowait(time.perf_counter())

    worker = app.worker()
    run = asyncio.create_task(worker.run())
    await asyncio.sleep(0.3)  # subscribed and idle
    with redis_server.client() as client:
        before = sum(s["calls"] for s in client.info("commandstats").values())
        await asyncio.sleep(1.0)
        idle_calls = sum(s["calls"] for s in client.info("commandstats").values()) - before - 1
    latencies = []
    for _ in range(5):
        sent = time.perf_counter()
        await ping.enqueue()
        latencies.append(await asyncio.wait_for(started.get(), 5) - sent)
        await asyncio.sleep(0.05)
    worker.request_stop()
    await run
    await app.close()
    assert statistics.median(latencies) < 0.050, latencies
    assert idle_calls < 20, f"an idle worker sent {idle_calls} commands in one second"


# connection loss ---------------------------------------------------------------------------


@pytest.mark.slow
async def test_jobs_complete_across_a_redis_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, appendonly=True)
    server.start()
    try:
        # A fetch whose reply died with the server still claimed its jobs; they come
        # back when their lease expires, so a short lease keeps the test short.
        app = Conveyor(server.url("restart"), grace_seconds=5, lease_seconds=2)
        done: set[int] = set()

        @app.job("catalog:step")
        async def step(n: int) -> None:
            await asyncio.sleep(0.02)
            done.add(n)

        await step.enqueue_many({"n": n} for n in range(60))
        worker = app.worker(concurrency=4)
        run = asyncio.create_task(worker.run())
        while len(done) < 15:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(server.restart, 0.5)
        deadline = time.monotonic() + 30
        while True:
            try:
                stats = await app.stats()
                if stats.count(JobState.COMPLETED) == 60:
                    break
            except BackendUnavailable:
                pass
            assert time.monotonic() < deadline, f"only {len(done)} of 60 jobs ran after the restart"
            await asyncio.sleep(0.1)
        worker.request_stop()
        await run
        assert done == set(range(60))
        assert (await app.stats()).count(JobState.FAILED) == 0
        await app.close()
    finally:
        server.stop()
