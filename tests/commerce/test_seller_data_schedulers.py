"""Three scheduler processes and a separate worker process on one backend: each tick enqueues each user once.

The processes run the deployable app (`conveyor.commerce.seller_data.service`)
configured only through its environment variables, against three regional
SP-API simulators served from this test process. With a tick every 2 s and
`SELLER_DATA_STALE_AFTER=0`, every user is due at every tick; a user whose
job from an earlier tick is still live is reported as such instead of
getting a second job.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor, Job, JobFilter, JobState
from conveyor.commerce import db
from conveyor.commerce.seller_data import Region, SellerAccount, SellerDataRun, SellerUser
from conveyor.sandbox import RunningSandbox, start
from conveyor.sandbox.lwa import LwaAuthority
from conveyor.sandbox.seller_api import MARKETPLACES, SellerApiConfig, SellerApiSandbox

APP = "conveyor.commerce.seller_data.service:app"
USERS = 10
EVERY = 2
TICKS = 4
UNLIMITED = {op: (1000.0, 1000.0) for op in ("getOrders", "getOrderItems", "getInventorySummaries")}


@pytest.fixture
def simulators() -> Iterator[tuple[LwaAuthority, dict[Region, RunningSandbox]]]:
    lwa = LwaAuthority()
    servers = {
        region: start(SellerApiSandbox(SellerApiConfig(region=region.value, rates=UNLIMITED), lwa=lwa))
        for region in Region
    }
    yield lwa, servers
    for server in servers.values():
        server.stop()


def seed_users(catalog_url: str, lwa: LwaAuthority, credentials: Path) -> list[int]:
    db.migrate(catalog_url)
    engine = db.create_engine_for(catalog_url)
    secrets = {}
    ids = []
    with db.session_factory(engine).begin() as session:
        for n in range(USERS):
            user = SellerUser(name=f"user {n}")
            for region in Region:
                country, marketplace = sorted(MARKETPLACES[region.value].items())[
                    n % len(MARKETPLACES[region])
                ]
                seller = f"A{region.value}{n:04d}"
                secrets[seller] = {
                    "client_id": lwa.client_id,
                    "client_secret": lwa.client_secret,
                    "refresh_token": lwa.authorize(seller),
                }
                account = SellerAccount(
                    region=region,
                    country=country,
                    marketplace_id=marketplace,
                    seller_id=seller,
                    credentials_ref=f"file:{credentials}#{seller}",
                )
                user.accounts.append(account)
            session.add(user)
            session.flush()
            ids.append(user.id)
    engine.dispose()
    credentials.write_text(json.dumps(secrets))
    return ids


@pytest.mark.slow
def test_three_schedulers_enqueue_each_user_once_per_tick(
    backend_url: str, simulators: tuple[LwaAuthority, dict[Region, RunningSandbox]], tmp_path: Path
) -> None:
    lwa, servers = simulators
    catalog_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    user_ids = seed_users(catalog_url, lwa, tmp_path / "sellers.json")
    env = {
        **os.environ,
        "CONVEYOR_URL": backend_url,
        "SELLER_DATA_CATALOG_URL": catalog_url,
        "SELLER_DATA_LWA_TOKEN_URL": f"{servers[Region.NA].base_url}/auth/o2/token",
        "SELLER_DATA_EVERY": str(EVERY),
        "SELLER_DATA_STALE_AFTER": "0",
        **{f"SELLER_DATA_SP_API_{region.value}": server.base_url for region, server in servers.items()},
    }
    conveyor = [sys.executable, "-m", "conveyor", "--app", APP]
    commands = [[*conveyor, "scheduler", "--poll", "0.1"]] * 3 + [[*conveyor, "worker", "--no-scheduler"]]
    # Logs go to files: a worker logs every HTTP call, and a full pipe nobody reads would block it.
    logs = [tmp_path / f"process-{n}.log" for n in range(len(commands))]
    procs = []
    for command, log in zip(commands, logs, strict=True):
        with log.open("wb") as out:
            procs.append(
                subprocess.Popen(command, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
            )
    try:
        in_time = asyncio.run(_wait_for_ticks(backend_url, deadline=time.monotonic() + 40))
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
    tails = [log.read_text(errors="replace")[-1500:] for log in logs]
    assert in_time, f"fewer than {TICKS} ticks were fired and run in time: {tails}"
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0], tails

    ticks, user_jobs = asyncio.run(_jobs(backend_url))
    runs = [tick.run_at for tick in ticks]
    assert len(set(runs)) == len(runs), "a tick was enqueued twice"
    assert [b - a for a, b in itertools.pairwise(runs)] == [EVERY] * (len(runs) - 1), "a tick was skipped"

    per_tick = Counter((int(job.payload["user_id"]), job.payload["requested_at"]) for job in user_jobs)
    assert set(per_tick.values()) == {1}, "a user got two jobs for one tick"
    finished = [tick for tick in ticks if tick.state is JobState.COMPLETED]
    assert len(finished) >= TICKS
    for tick in finished:
        enqueued, live = tick.result["enqueued"], tick.result["already_live"]
        assert sorted(enqueued + live) == user_ids, "every user is due at every tick"
        assert {uid for uid, at in per_tick if at == tick.run_at} == set(enqueued)
    assert sorted(finished[0].result["enqueued"]) == user_ids

    engine = db.create_engine_for(catalog_url)
    with db.session_factory(engine)() as session:
        updated = [u.data_updated_at for u in session.query(SellerUser)]
        run_jobs = {r.job_id for r in session.query(SellerDataRun)}
    engine.dispose()
    assert all(updated), "every user's data was fetched by the worker process"
    assert run_jobs <= {job.id for job in user_jobs}


async def _wait_for_ticks(url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        ticks, _ = await _jobs(url)
        if sum(tick.state is JobState.COMPLETED for tick in ticks) >= TICKS:
            return True
        await asyncio.sleep(0.25)
    ticks, users = await _jobs(url)
    print("DEBUG", [(t.state, t.attempts, t.error) for t in ticks])
    print("DEBUGU", Counter((u.state, u.attempts, u.error.message if u.error else None) for u in users))
    return False


async def _jobs(url: str) -> tuple[list[Job], list[Job]]:
    app = Conveyor(url)
    try:
        ticks = await app.list_jobs(
            JobFilter(types=["seller_data:enqueue_due_users"], oldest_first=True), limit=1000
        )
        users = await app.list_jobs(JobFilter(types=["seller_data:process_user_data"]), limit=1000)
        return ticks.jobs, users.jobs
    finally:
        await app.close()
