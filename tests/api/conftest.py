"""The API against a real app on a real store: a fresh SQLite file, or a fresh Redis key prefix.

Tests that only concern authentication override `backend_url` to SQLite alone.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from conveyor import Conveyor, FakeClock, Job, JobContext, JobOptions, WorkerInfo, WorkerSummary
from conveyor.api import AuthConfig, Scope, TokenStore, create_api
from conveyor.backends.base import FetchParams


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class Gates:
    """Lets a test hold `catalog:wait` jobs running until it opens their gate."""

    events: dict[str, asyncio.Event] = field(default_factory=dict)

    def gate(self, key: str) -> asyncio.Event:
        return self.events.setdefault(key, asyncio.Event())


def build_app(url: str, clock: FakeClock | None, gates: Gates) -> Conveyor:
    app = Conveyor(url, clock=clock)

    @app.job("catalog:echo")
    async def echo(ctx: JobContext, sku: str, api_key: str | None = None, qty: int = 1) -> dict[str, Any]:
        ctx.progress(50, f"echoing {sku}", step="echo")
        ctx.log(f"echo {sku} x{qty}")
        return {"sku": sku, "qty": qty, "access_token": "tok-123"}

    @app.job("catalog:boom", attempts=1)
    def boom(sku: str) -> None:
        raise ValueError(f"bad sku {sku}")

    @app.job("catalog:flaky", attempts=3, backoff=[5, 30])
    def flaky(sku: str) -> None:
        raise ConnectionError(f"supplier timed out for {sku}")

    @app.job("catalog:wait", queue="slow")
    async def wait(ctx: JobContext, key: str, total: int = 500) -> str:
        ctx.progress(done=234, total=total, message=f"Importing products: 234/{total}", step="products")
        await gates.gate(key).wait()
        return key

    @app.job("catalog:parent", queue="parents")
    async def parent(ctx: JobContext, n: int) -> None:
        await ctx.spawn_many(echo, [{"sku": f"child-{i}"} for i in range(n)])

    return app


@pytest.fixture
def gates() -> Gates:
    return Gates()


@pytest.fixture
async def app(backend_url: str, clock: FakeClock, gates: Gates) -> AsyncIterator[Conveyor]:
    app = build_app(backend_url, clock, gates)
    yield app
    await app.close()


@dataclass
class Tokens:
    store: TokenStore
    admin: str
    write: str
    read: str
    tenant_a: str  # admin scope, bound to store-a
    tenant_b: str  # admin scope, bound to store-b

    @staticmethod
    def header(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tokens(tmp_path: Path, clock: FakeClock) -> Tokens:
    store = TokenStore(tmp_path / "auth.db", clock=clock)

    def make(scope: Scope, tenant: str | None = None) -> str:
        return store.create(scope=scope, tenant=tenant, name=f"{scope} {tenant or ''}".strip())[1]

    return Tokens(
        store=store,
        admin=make(Scope.ADMIN),
        write=make(Scope.WRITE),
        read=make(Scope.READ),
        tenant_a=make(Scope.ADMIN, "store-a"),
        tenant_b=make(Scope.ADMIN, "store-b"),
    )


@pytest.fixture
def api(app: Conveyor, tokens: Tokens, clock: FakeClock) -> FastAPI:
    return create_api(app, auth=AuthConfig(tokens=tokens.store, clock=clock), events_interval=0.05)


Client = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def client_for(api: FastAPI) -> AsyncIterator[Client]:
    """`client_for(token)`: an httpx client on the app in this loop, sending that token."""
    clients: list[httpx.AsyncClient] = []

    def make(token: str | None = None, *, address: str = "127.0.0.1") -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(api, client=(address, 50000)),
            base_url="http://conveyor.test",
            headers=Tokens.header(token) if token else {},
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def admin(client_for: Client, tokens: Tokens) -> httpx.AsyncClient:
    return client_for(tokens.admin)


Drain = Callable[..., Awaitable[WorkerSummary]]


@pytest.fixture
def drain(app: Conveyor) -> Drain:
    """Run a burst worker until nothing is ready (time moves only when the test moves it)."""

    async def run(**options: Any) -> WorkerSummary:
        return await app.worker(burst=True, **options).run()

    return run


async def enqueue(app: Conveyor, name: str, payload: dict[str, Any] | None = None, **options: Any) -> Job:
    return await app.enqueue(name, payload or {}, JobOptions(**options))


async def claim(app: Conveyor, queue: str, n: int) -> list[Job]:
    """Put `n` ready jobs of `queue` into the running state, as a worker's fetch does."""
    backend = await app.backend()
    now = app.clock.now()
    return await backend.fetch(
        FetchParams(worker_id="test-worker", limits={queue: n}, now=now, lease_until=now + 3600)
    )


async def register_worker(app: Conveyor, concurrency: dict[str, int]) -> None:
    """A live worker as seen through its heartbeat, without running one."""
    backend = await app.backend()
    now = app.clock.now()
    info = WorkerInfo(
        id="host:1:abc", hostname="host", pid=1, concurrency=concurrency, started_at=now, last_seen=now
    )
    await backend.renew(info, [], lease_until=now + 60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
