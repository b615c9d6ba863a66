"""Seller-data fetching end to end: schedule tick → per-user jobs → three regional SP-API simulators.

One FakeClock drives the engine, the pipeline and the simulators' rate limits;
the scheduler and burst workers run in-process and the test moves time, so
back-offs cost no wall time. Expected figures are recomputed here from what
the simulators actually served, not from the pipeline's own analysis code.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from conveyor import Conveyor, FakeClock, Job, JobFilter, JobState, Scheduler
from conveyor.api import AuthConfig, Scope, TokenStore, create_api
from conveyor.commerce import db
from conveyor.commerce.seller_data import (
    TICK_QUEUE,
    Region,
    RunStatus,
    SellerAccount,
    SellerDataCache,
    SellerDataJobs,
    SellerDataRun,
    SellerUser,
    register,
)
from conveyor.sandbox import RunningSandbox, start
from conveyor.sandbox.faults import FaultConfig, FaultInjector, FaultKind
from conveyor.sandbox.lwa import LwaAuthority
from conveyor.sandbox.seller_api import MARKETPLACES, SellerApiConfig, SellerApiSandbox

REGIONS = (Region.NA, Region.EU, Region.FE)
WINDOW_DAYS = 30
LIVE = (JobState.PENDING, JobState.SCHEDULED, JobState.RUNNING, JobState.WAITING_CHILDREN)


@dataclass
class World:
    app: Conveyor
    jobs: SellerDataJobs
    clock: FakeClock
    sessions: sessionmaker[Session]
    lwa: LwaAuthority
    sandboxes: dict[Region, SellerApiSandbox]
    credentials: Path
    tmp_path: Path

    def add_users(self, count: int) -> list[int]:
        """`count` users with one account per region, each its own seller with its own refresh token."""
        secrets: dict[str, dict[str, str]] = json.loads(self.credentials.read_text() or "{}")
        ids = []
        with self.sessions.begin() as session:
            for n in range(count):
                user = SellerUser(name=f"user {n}")
                for region in REGIONS:
                    country, marketplace = sorted(MARKETPLACES[region.value].items())[
                        n % len(MARKETPLACES[region])
                    ]
                    seller = f"A{region.value}{n:04d}S{len(secrets):04d}"
                    secrets[seller] = {
                        "client_id": self.lwa.client_id,
                        "client_secret": self.lwa.client_secret,
                        "refresh_token": self.lwa.authorize(seller),
                    }
                    user.accounts.append(
                        SellerAccount(
                            region=region,
                            country=country,
                            marketplace_id=marketplace,
                            seller_id=seller,
                            credentials_ref=f"file:{self.credentials}#{seller}",
                        )
                    )
                session.add(user)
                session.flush()
                ids.append(user.id)
        self.credentials.write_text(json.dumps(secrets))
        return ids

    async def tick(self) -> Job:
        """Move to the next hourly tick, let a scheduler fire it, and run only the tick job."""
        (schedule,) = await self.app.schedules()
        self.clock.set(schedule.next_run_at)
        assert await Scheduler(self.app).tick() == 1
        await self.app.worker(burst=True, queues=[TICK_QUEUE]).run()
        page = await self.app.list_jobs(JobFilter(types=[self.jobs.enqueue_due_users.name]), limit=1)
        job = page.jobs[0]
        assert job.state is JobState.COMPLETED, job.error
        return job

    async def drain(self, limit: int = 200) -> None:
        """Burst workers, 5 fake seconds apart (for back-offs), until no job is live."""
        for _ in range(limit):
            await self.app.worker(burst=True, concurrency=10).run()
            if not (await self.app.list_jobs(JobFilter(states=list(LIVE)), limit=1)).jobs:
                return
            self.clock.advance(5)
        raise AssertionError("jobs still live after the drain limit")

    async def user_jobs(self) -> dict[int, Job]:
        page = await self.app.list_jobs(JobFilter(types=[self.jobs.process_user_data.name]), limit=1000)
        return {int(job.payload["user_id"]): job for job in page.jobs}


@pytest.fixture
async def world(backend_url: str, database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    clock = FakeClock()
    lwa = LwaAuthority()
    sandboxes = {
        region: SellerApiSandbox(
            SellerApiConfig(region=region.value, seed=11, orders_per_marketplace=(2, 6)), lwa=lwa, clock=clock
        )
        for region in REGIONS
    }
    servers: list[RunningSandbox] = [start(sandbox) for sandbox in sandboxes.values()]
    db.migrate(database_url)
    engine = db.create_engine_for(database_url)
    app = Conveyor(backend_url, clock=clock)
    jobs = register(
        app,
        catalog_url=database_url,
        sp_api_base_urls={
            region.value: server.base_url for region, server in zip(REGIONS, servers, strict=True)
        },
        token_url=f"{servers[0].base_url}/auth/o2/token",
        clock=clock,
        window_days=WINDOW_DAYS,
        connector_timeout=10,
    )
    await app.sync_schedules()
    credentials = tmp_path / "sellers.json"
    credentials.write_text("{}")
    yield World(app, jobs, clock, db.session_factory(engine), lwa, sandboxes, credentials, tmp_path)
    await app.close()
    engine.dispose()
    for server in servers:
        server.stop()


def expected_analysis(sandbox: SellerApiSandbox, seller: str, marketplace: str) -> dict[str, Any]:
    """The figures recomputed from what the simulator served for this seller and marketplace."""
    served_orders = sandbox.served.orders.get((seller, marketplace), {}).values()
    sales = [o for o in served_orders if o["OrderStatus"] not in ("Canceled", "Pending")]
    per_sku: dict[str, dict[str, Any]] = {}
    for order in sales:
        for line in sandbox.served.items[order["AmazonOrderId"]]:
            sku = per_sku.setdefault(line["SellerSKU"], {"orders": set(), "units": 0, "revenue": Decimal(0)})
            sku["orders"].add(order["AmazonOrderId"])
            sku["units"] += line["QuantityOrdered"]
            sku["revenue"] += Decimal(line["ItemPrice"]["Amount"])
    stock = {
        sku: summary["inventoryDetails"]["fulfillableQuantity"]
        for sku, summary in sandbox.served.inventory[(seller, marketplace)].items()
    }
    expected = {}
    for sku in sorted(set(per_sku) | set(stock)):
        sold = per_sku.get(sku, {"orders": set(), "units": 0, "revenue": Decimal(0)})
        daily = sold["units"] / WINDOW_DAYS
        expected[sku] = {
            "orders": len(sold["orders"]),
            "units": sold["units"],
            "revenue": sold["revenue"],
            "stock": stock.get(sku, 0),
            "stock_cover_days": round(stock.get(sku, 0) / daily, 1) if sold["units"] else None,
        }
    return {
        "orders": len(sales),
        "units": sum(s["units"] for s in expected.values()),
        "revenue": sum((s["revenue"] for s in expected.values()), Decimal(0)),
        "skus": expected,
    }


def stored_figures(analysis: dict[str, Any]) -> dict[str, Any]:
    return {
        "orders": analysis["orders"],
        "units": analysis["units"],
        "revenue": Decimal(analysis["revenue"]),
        "skus": {
            sku: {
                "orders": f["orders"],
                "units": f["units"],
                "revenue": Decimal(f["revenue"]),
                "stock": f["stock"],
                "stock_cover_days": f["stock_cover_days"],
            }
            for sku, f in analysis["skus"].items()
        },
    }


async def test_fifty_users_three_accounts_each_are_fetched_analysed_and_recorded(world: World) -> None:
    user_ids = world.add_users(50)

    first = await world.tick()
    live = await world.user_jobs()
    second = await world.tick()  # an hour later, before any user job ran: all still live

    assert sorted(first.result["enqueued"]) == sorted(user_ids)
    assert first.result["already_live"] == []
    assert second.result == {"tick": second.run_at, "enqueued": [], "already_live": first.result["enqueued"]}
    assert await world.user_jobs() == live
    assert all(job.user_id == str(uid) for uid, job in live.items())

    await world.drain()

    jobs = await world.user_jobs()
    assert {job.state for job in jobs.values()} == {JobState.COMPLETED}
    with world.sessions() as session:
        accounts = session.scalars(select(SellerAccount)).all()
        caches = {c.account_id: c for c in session.scalars(select(SellerDataCache))}
        runs = {r.user_id: r for r in session.scalars(select(SellerDataRun))}
        users = {u.id: u for u in session.scalars(select(SellerUser))}
    assert len(accounts) == len(caches) == 150
    for account in accounts:
        sandbox = world.sandboxes[account.region]
        assert stored_figures(caches[account.id].analysis) == expected_analysis(
            sandbox, account.seller_id, account.marketplace_id
        )
        assert caches[account.id].user_id == account.user_id
    for user_id, job in jobs.items():
        run = runs[user_id]
        assert (run.job_id, run.status, run.attempt) == (job.id, RunStatus.COMPLETED, 1)
        assert (run.accounts_total, run.accounts_processed, run.errors) == (3, 3, [])
        assert run.finished_at is not None
        assert run.duration_seconds == (run.finished_at - run.started_at).total_seconds()
        assert users[user_id].data_updated_at == run.finished_at
        assert job.result == {
            "user_id": user_id,
            "status": "completed",
            "accounts_total": 3,
            "accounts_processed": 3,
            "errors": [],
        }
        assert job.progress.percent == 100
        lines = [line.line for line in await world.app.job_logs(job.id)]
        labels = sorted(f"{a.region.value}-{a.country}" for a in accounts if a.user_id == user_id)
        # The engine may drop a job's very last report when it settles, so the last account's
        # line can be missing; every line there is must be a summary of one of the user's accounts.
        assert len(lines) >= len(labels) - 1
        assert set(line.split(":")[0] for line in lines) <= set(labels)
        summary = r"(NA|EU|FE)-[A-Z]{2}: \d+ orders, \d+ units, \d+ SKUs"
        assert all(re.fullmatch(summary, line) for line in lines), lines
    assert sum(s.counters.rate_limited for s in world.sandboxes.values()) == 0
    with_sales = [
        a for a in accounts if world.sandboxes[a.region].served.orders.get((a.seller_id, a.marketplace_id))
    ]
    assert len(with_sales) > 120, "the comparison must cover real orders, not empty accounts"

    world.clock.advance(600)  # between ticks, every user's data is fresh: nobody is due
    await world.jobs.enqueue_due_users.enqueue()
    await world.app.worker(burst=True, queues=[TICK_QUEUE]).run()
    page = await world.app.list_jobs(JobFilter(types=[world.jobs.enqueue_due_users.name]), limit=1)
    assert (page.jobs[0].result["enqueued"], page.jobs[0].result["already_live"]) == ([], [])
    hourly = await world.tick()  # the next hourly tick finds everyone's data an hour old
    assert sorted(hourly.result["enqueued"]) == sorted(user_ids)


async def test_a_failing_account_is_recorded_while_the_others_complete(world: World) -> None:
    flaky, partial, broken = world.add_users(3)
    with world.sessions() as session:
        sellers = {(a.user_id, a.region): a.seller_id for a in session.scalars(select(SellerAccount))}
    world.lwa.revoke(sellers[(partial, Region.EU)])
    for region in REGIONS:
        world.lwa.revoke(sellers[(broken, region)])

    await world.tick()
    # One job at a time, oldest first: the first user's NA account meets a 5xx, a temporary
    # failure; the job is retried and keeps the two accounts it had already refreshed.
    world.sandboxes[Region.NA].faults.force(FaultKind.ERROR)
    for _ in range(50):
        await world.app.worker(burst=True, concurrency=1).run()
        if not (await world.app.list_jobs(JobFilter(states=list(LIVE)), limit=1)).jobs:
            break
        world.clock.advance(5)
    jobs = await world.user_jobs()

    with world.sessions() as session:
        runs = {r.user_id: r for r in session.scalars(select(SellerDataRun))}
        cache_rows = session.execute(
            select(SellerDataCache.user_id, func.count()).group_by(SellerDataCache.user_id)
        )
        cached = {user_id: count for user_id, count in cache_rows}
        updated = {u.id: u.data_updated_at for u in session.scalars(select(SellerUser))}

    assert (jobs[flaky].state, jobs[flaky].attempts) == (JobState.COMPLETED, 2)
    assert (runs[flaky].status, runs[flaky].attempt, runs[flaky].errors) == (RunStatus.COMPLETED, 2, [])
    assert runs[flaky].accounts_processed == 3
    assert world.sandboxes[Region.NA].counters.faults == {"error": 1}

    assert jobs[partial].state is JobState.COMPLETED
    assert runs[partial].status is RunStatus.PARTIAL
    assert runs[partial].accounts_processed == 2
    (error,) = runs[partial].errors
    assert error["kind"] == "permanent"
    assert error["account"].startswith("EU-")
    assert "invalid grant" in error["message"]
    assert jobs[partial].result["errors"] == runs[partial].errors
    assert updated[partial] is not None

    assert jobs[broken].state is JobState.FAILED
    assert runs[broken].status is RunStatus.FAILED
    assert (runs[broken].accounts_processed, len(runs[broken].errors)) == (0, 3)
    assert updated[broken] is None
    assert cached == {flaky: 3, partial: 2}

    await assert_engine_status_endpoints(world, jobs, partial=partial, broken=broken)


async def assert_engine_status_endpoints(
    world: World, jobs: dict[int, Job], *, partial: int, broken: int
) -> None:
    """The seed's /app/job-status endpoints, served by the engine's API, answer for these jobs."""
    tokens = TokenStore(world.tmp_path / "auth.db", clock=world.clock)
    _, token = tokens.create(scope=Scope.READ, name="seller-data test")
    api = create_api(world.app, auth=AuthConfig(tokens=tokens, clock=world.clock))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(api),
        base_url="http://conveyor.test",
        headers={"Authorization": f"Bearer {token}"},
    ) as http:
        user = (await http.get(f"/app/job-status/status/user/{partial}")).json()
        one = (await http.get(f"/app/job-status/status/job/{jobs[broken].id}")).json()
        recent = (await http.get("/app/job-status/recent", params={"limit": 100})).json()
        stats = (await http.get("/app/job-status/queue/stats")).json()
        failed = (await http.get("/app/job-status/failed", params={"limit": 100})).json()
    assert user["status"] == "completed"
    assert user["jobs"][0]["job_id"] == jobs[partial].id
    assert user["jobs"][0]["result"]["accounts_processed"] == 2
    assert (one["status"], one["user_id"]) == ("failed", str(broken))
    assert "every account failed" in one["error"]
    assert {j["job_id"] for j in recent["jobs"]} >= {job.id for job in jobs.values()}
    assert (stats["seller-data"]["completed"], stats["seller-data"]["failed"]) == (2, 1)
    assert [j["job_id"] for j in failed["jobs"]] == [jobs[broken].id]


async def test_a_cancelled_run_is_recorded_as_interrupted(world: World) -> None:
    (user_id,) = world.add_users(1)
    for sandbox in world.sandboxes.values():  # slow answers, so the cancel lands mid-run
        sandbox.faults = FaultInjector(FaultConfig(latency=(0.2, 0.2)))
    await world.tick()
    (job,) = (await world.user_jobs()).values()
    worker = asyncio.create_task(world.app.worker(burst=True).run())
    while (await world.app.get_job(job.id)).state is not JobState.RUNNING:
        await asyncio.sleep(0.05)
    await world.app.cancel(job.id)
    await asyncio.wait_for(worker, timeout=30)

    with world.sessions() as session:
        run = session.scalars(select(SellerDataRun)).one()
        cached = session.scalar(select(func.count()).select_from(SellerDataCache))
        user = session.get(SellerUser, user_id)
    assert (await world.app.get_job(job.id)).state is JobState.CANCELLED
    assert (run.job_id, run.status) == (job.id, RunStatus.INTERRUPTED)
    assert run.finished_at is not None
    assert run.accounts_processed == cached < 3
    assert user is not None
    assert user.data_updated_at is None
