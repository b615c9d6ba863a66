"""Past its bound of requests in flight the API answers 503 with Retry-After at once."""

from __future__ import annotations

import asyncio

import httpx
from starlette.types import Message, Receive, Scope, Send

from conveyor.api.shedding import LoadShedder


async def test_requests_past_the_bound_are_shed_at_once_and_streams_are_not_counted() -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/slow":
            entered.set()
            await release.wait()
        start: Message = {"type": "http.response.start", "status": 200, "headers": []}
        await send(start)
        await send({"type": "http.response.body", "body": b"ok"})

    shedder = LoadShedder(slow, max_in_flight=1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(shedder), base_url="http://t") as client:
        held = asyncio.create_task(client.get("/slow"))
        await entered.wait()
        shed = await client.get("/api/jobs")
        assert shed.status_code == 503
        assert shed.headers["retry-after"] == "1"
        assert shed.json() == {"detail": "the server is busy; try again shortly"}
        assert (await client.get("/healthz")).status_code == 200  # health checks always answer
        assert (await client.get("/api/events")).status_code == 200  # streams are not counted
        release.set()
        assert (await held).status_code == 200
        assert (await client.get("/api/jobs")).status_code == 200  # room again
    assert shedder.in_flight == 0
