"""/api/events over a real HTTP connection (uvicorn in this loop), with a real worker in this loop.

httpx's ASGI transport buffers whole responses, so a stream needs a server.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from conveyor import Conveyor, FakeClock, PayloadError
from conveyor.api import AuthConfig, Scope, create_api
from conveyor.api.events import RECHECK

from ..sse import SseEvent, async_sse_events
from .conftest import Gates, Tokens, enqueue, free_port

Event = tuple[str, Any]


@asynccontextmanager
async def serving(api: FastAPI) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    """Parse a server-sent event stream into (event, decoded JSON data) pairs."""
    async for name, data, _ in async_sse_events(response):
        yield name, data


async def until(stream: AsyncIterator[Event], wanted: Any, seen: list[Event]) -> Event:
    """The first event, already seen or still to come, that satisfies `wanted`."""
    for event in seen:
        if wanted(event):
            return event
    async with asyncio.timeout(10):
        async for event in stream:
            seen.append(event)
            if wanted(event):
                return event
    raise AssertionError(f"stream ended without the wanted event; saw {seen}")


async def test_stream_delivers_progress_of_a_running_job_then_its_end(
    api: FastAPI, app: Conveyor, tokens: Tokens, gates: Gates
) -> None:
    job = await enqueue(app, "catalog:wait", {"key": "sse"})
    worker = app.worker(queues=["slow"], scheduler=False)
    working = asyncio.create_task(worker.run())
    seen: list[Event] = []
    try:
        async with serving(api) as (base, server), httpx.AsyncClient(base_url=base, timeout=10) as client:
            headers = Tokens.header(tokens.read)
            async with client.stream("GET", "/api/events", headers=headers) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                stream = events(response)
                _, running = await until(
                    stream,
                    lambda e: (
                        e[0] == "job"
                        and e[1]["id"] == job.id
                        and e[1]["progress"]["message"] == "Importing products: 234/500"
                    ),
                    seen,
                )
                assert running["state"] == "running"
                assert running["progress"]["percent"] == pytest.approx(46.8)
                _, stats = await until(
                    stream, lambda e: e[0] == "stats" and e[1]["statistics"]["running"] == 1, seen
                )
                assert stats["queues"]["slow"]["active"] == 1

                gates.gate("sse").set()
                _, done = await until(
                    stream,
                    lambda e: e[0] == "job" and e[1]["id"] == job.id and e[1]["state"] == "completed",
                    seen,
                )
                assert done["result"] == "sse"
            async with asyncio.timeout(5):  # the server notices the disconnect and drops the stream
                while server.server_state.connections:
                    await asyncio.sleep(0.05)
    finally:
        gates.gate("sse").set()
        worker.request_stop()
        await asyncio.wait_for(working, 10)


async def test_stream_is_scoped_to_the_tokens_tenant(api: FastAPI, app: Conveyor, tokens: Tokens) -> None:
    own = await enqueue(app, "catalog:echo", {"sku": "a"}, tenant="store-a")
    await enqueue(app, "catalog:echo", {"sku": "b"}, tenant="store-b")
    await enqueue(app, "catalog:echo", {"sku": "n"})
    seen: list[Event] = []
    async with (
        serving(api) as (base, _),
        httpx.AsyncClient(base_url=base, timeout=10) as client,
        client.stream("GET", "/api/events", headers=Tokens.header(tokens.tenant_a)) as response,
    ):
        _, stats = await until(events(response), lambda e: e[0] == "stats", seen)
    assert [e[1]["id"] for e in seen if e[0] == "job"] == [own.id]
    assert stats["statistics"]["total"] == 1
    assert set(stats["queues"]) == {"default"}


async def test_stream_refuses_without_a_token(api: FastAPI) -> None:
    async with serving(api) as (base, _), httpx.AsyncClient(base_url=base, timeout=10) as client:
        response = await client.get("/api/events")
    assert response.status_code == 401


async def next_matching(stream: AsyncIterator[SseEvent], wanted: Any, seen: list[SseEvent]) -> SseEvent:
    async with asyncio.timeout(10):
        async for event in stream:
            seen.append(event)
            if wanted(event):
                return event
    raise AssertionError(f"stream ended without the wanted event; saw {seen}")


async def test_a_reconnecting_client_resumes_after_its_last_event_id(
    api: FastAPI, app: Conveyor, tokens: Tokens
) -> None:
    headers = Tokens.header(tokens.read)
    seen: list[SseEvent] = []
    async with serving(api) as (base, _), httpx.AsyncClient(base_url=base, timeout=10) as client:
        async with client.stream("GET", "/api/events", headers=headers) as response:
            stream = async_sse_events(response)
            await next_matching(stream, lambda e: e[0] == "stats", seen)
            first = await enqueue(app, "catalog:echo", {"sku": "first"})
            _, added, last_id = await next_matching(
                stream, lambda e: e[0] == "job" and e[1]["id"] == first.id, seen
            )
        assert added["event"]["kind"] == "added"
        assert added["event"]["at"] == pytest.approx(first.created_at)
        assert last_id
        second = await enqueue(app, "catalog:echo", {"sku": "second"})
        await app.cancel(first.id)
        resumed: list[SseEvent] = []
        async with client.stream(
            "GET", "/api/events", headers={**headers, "Last-Event-ID": last_id}
        ) as again:
            stream = async_sse_events(again)
            await next_matching(stream, lambda e: e[0] == "job" and e[1]["id"] == first.id, resumed)
    # No snapshot: what came after the last event seen, in order, and nothing before it.
    jobs = [(e[1]["id"], e[1]["event"]["kind"]) for e in resumed if e[0] == "job"]
    assert jobs == [(second.id, "added"), (first.id, "cancelled")]
    assert resumed[0][0] == "stats"


async def test_live_events_of_other_tenants_never_reach_a_tenant_token(
    api: FastAPI, app: Conveyor, tokens: Tokens
) -> None:
    seen: list[SseEvent] = []
    async with (
        serving(api) as (base, _),
        httpx.AsyncClient(base_url=base, timeout=10) as client,
        client.stream("GET", "/api/events", headers=Tokens.header(tokens.tenant_a)) as response,
    ):
        stream = async_sse_events(response)
        await next_matching(stream, lambda e: e[0] == "stats", seen)
        other = await enqueue(app, "catalog:echo", {"sku": "b"}, tenant="store-b")
        await app.cancel(other.id)
        own = await enqueue(app, "catalog:echo", {"sku": "a"}, tenant="store-a")
        await next_matching(stream, lambda e: e[0] == "job" and e[1]["id"] == own.id, seen)
        counted = [e for e in seen if e[0] == "stats" and e[1]["statistics"]["total"] == 1]
        if not counted:  # the counts may be read just before or just after the job's event
            await next_matching(stream, lambda e: e[0] == "stats", seen)
    assert [e[1]["id"] for e in seen if e[0] in ("job", "removed")] == [own.id]
    assert [e[1]["statistics"]["total"] for e in seen if e[0] == "stats"] == [0, 1]


async def test_a_client_behind_the_streams_bound_gets_a_fresh_snapshot(
    backend_url: str, tokens: Tokens, clock: FakeClock
) -> None:
    joined = "&" if "?" in backend_url else "?"
    async with Conveyor(f"{backend_url}{joined}events_max=5", clock=clock) as app:

        @app.job("catalog:touch")
        async def touch(n: int) -> None: ...

        api = create_api(app, auth=AuthConfig(tokens=tokens.store, clock=clock), events_interval=0.05)
        headers = Tokens.header(tokens.read)
        seen: list[SseEvent] = []
        async with serving(api) as (base, _), httpx.AsyncClient(base_url=base, timeout=10) as client:
            async with client.stream("GET", "/api/events", headers=headers) as response:
                stream = async_sse_events(response)
                await next_matching(stream, lambda e: e[0] == "stats", seen)
                first = await touch.enqueue(n=0)
                _, _, last_id = await next_matching(stream, lambda e: e[1].get("id") == first.id, seen)
            assert last_id
            # Far more events than the bound keeps (Redis trims in nodes of 100 entries).
            later = await touch.enqueue_many([{"n": n} for n in range(1, 301)])
            resumed: list[SseEvent] = []
            again = {**headers, "Last-Event-ID": last_id}
            async with client.stream("GET", "/api/events", headers=again) as response:
                stream = async_sse_events(response)
                # The first job's and the earliest later jobs' events were trimmed unread, so
                # only a new snapshot (job events without an `event` field) can show them.
                wanted = {first.id, later[0]}
                while not wanted <= snapshot_ids(resumed):
                    await next_matching(stream, lambda e: e[0] == "job", resumed)
    assert resumed[0][0] == "stats"


def snapshot_ids(events: list[SseEvent]) -> set[str]:
    return {e[1]["id"] for e in events if e[0] == "job" and "event" not in e[1]}


def beyond(cursor: str) -> str:
    """A cursor past the newest event, as a tab left open while the store was emptied would send."""
    if cursor.isdigit():  # SQLite: the last event's number
        return str(int(cursor) + 1000)
    return re.sub(r"(\d+)-\d+", lambda m: f"{int(m[1]) + 10**6}-0", cursor)  # Redis: per-queue entry ids


async def test_a_last_event_id_beyond_the_newest_event_gets_a_snapshot(
    api: FastAPI, app: Conveyor, tokens: Tokens
) -> None:
    headers = Tokens.header(tokens.read)
    waiting = await enqueue(app, "catalog:echo", {"sku": "live"}, delay=60)
    cursor = (await (await app.backend()).events(None)).cursor
    with pytest.raises(PayloadError, match="beyond the newest event"):
        await (await app.backend()).events(beyond(cursor), limit=1)
    seen: list[SseEvent] = []
    async with (
        serving(api) as (base, _),
        httpx.AsyncClient(base_url=base, timeout=10) as client,
        client.stream("GET", "/api/events", headers={**headers, "Last-Event-ID": beyond(cursor)}) as response,
    ):
        stream = async_sse_events(response)
        await next_matching(stream, lambda e: e[0] == "stats", seen)
        assert waiting.id in snapshot_ids(seen)
        later = await enqueue(app, "catalog:echo", {"sku": "after"}, delay=60)
        await next_matching(stream, lambda e: e[0] == "job" and e[1]["id"] == later.id, seen)


async def test_a_stream_ends_within_seconds_of_its_token_being_revoked(
    api: FastAPI, app: Conveyor, tokens: Tokens
) -> None:
    info, token = tokens.store.create(scope=Scope.READ, name="soon revoked")
    seen: list[SseEvent] = []
    async with (
        serving(api) as (base, _),
        httpx.AsyncClient(base_url=base, timeout=10) as client,
        client.stream("GET", "/api/events", headers=Tokens.header(token)) as response,
    ):
        stream = async_sse_events(response)
        await next_matching(stream, lambda e: e[0] == "stats", seen)
        assert tokens.store.revoke(info.id)
        revoked_at = time.monotonic()
        async with asyncio.timeout(RECHECK + 5):
            rest = [event async for event in stream]  # ends only when the server closes it
        ended_after = time.monotonic() - revoked_at
    assert rest[-1][0] == "error"
    assert "revoked" in rest[-1][1]["detail"]
    assert ended_after < RECHECK + 3
