"""A record no view can show, already in the store (left by a version that took any option): every
listing, status endpoint, stream and page still answers, leaving that one job out."""

from __future__ import annotations

import re
import sqlite3

import httpx
import redis
from fastapi import FastAPI

from conveyor import Conveyor
from conveyor.backends.redis import split_prefix
from conveyor.backends.redis.keys import KeyLayout

from ..sse import async_sse_events
from .conftest import Client, Tokens, enqueue
from .test_events import serving

FAR = "1e308"  # a time no calendar holds


def corrupt_times(backend_url: str, job_id: str, queue: str) -> None:
    """Write the bad times past the engine's checks, as an old version would have stored them."""
    if backend_url.startswith("sqlite:///"):
        with sqlite3.connect(backend_url.removeprefix("sqlite:///")) as conn:
            query = "UPDATE conveyor_jobs SET run_at = ?, created_at = ? WHERE id = ?"
            assert conn.execute(query, (float(FAR), float(FAR), job_id)).rowcount == 1
        return
    plain, prefix = split_prefix(backend_url)
    assert prefix is not None
    with redis.Redis.from_url(plain) as client:
        key = KeyLayout(prefix).job(queue, job_id)
        assert client.exists(key)
        client.hset(key, mapping={"run_at": FAR, "created_at": FAR})


async def test_every_reader_survives_a_record_that_cannot_be_shown(
    api: FastAPI, app: Conveyor, backend_url: str, client_for: Client, tokens: Tokens
) -> None:
    good = await enqueue(app, "catalog:echo", {"sku": "good"}, delay=60)
    bad = await enqueue(app, "catalog:echo", {"sku": "bad"}, delay=60)
    corrupt_times(backend_url, bad.id, bad.queue)
    admin = client_for(tokens.admin)

    listing = await admin.get("/api/jobs")
    assert listing.status_code == 200
    assert [job["id"] for job in listing.json()["jobs"]] == [good.id]
    alone = await admin.get(f"/api/jobs/{bad.id}")
    assert alone.status_code == 422
    assert "out of range" in alone.json()["detail"]
    for path in ("/api/background-jobs/status", "/app/job-status/recent", "/api/queues/stats"):
        assert (await admin.get(path)).status_code == 200, path

    sent = []
    async with (
        serving(api) as (base, _),
        httpx.AsyncClient(base_url=base, timeout=10) as client,
        client.stream("GET", "/api/events", headers=Tokens.header(tokens.admin)) as stream,
    ):
        async for name, data, _ in async_sse_events(stream):
            if name == "stats":
                break
            sent.append(data["id"])
    assert sent == [good.id]

    browser = await _signed_in(client_for, tokens)
    assert (await browser.get("/dashboard/jobs")).status_code == 200
    assert (await browser.get("/dashboard/")).status_code == 200
    detail = await browser.get(f"/dashboard/jobs/{bad.id}")
    assert detail.status_code == 200
    assert "(invalid time)" in detail.text


async def _signed_in(client_for: Client, tokens: Tokens) -> httpx.AsyncClient:
    browser = client_for()
    form = await browser.get("/dashboard/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    answer = await browser.post("/dashboard/login", data={"token": tokens.admin, "csrf": csrf.group(1)})
    assert answer.status_code == 303
    return browser
