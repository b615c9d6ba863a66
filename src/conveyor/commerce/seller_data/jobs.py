"""Seed 004 on the engine: an hourly tick that only enqueues, and one `process_user_data` job per user.

```
schedule seller_data:hourly (cron, default every hour on the hour)
└─ seller_data:enqueue_due_users    reads who is due (never updated, or stale); enqueues, returns at once
   └─ seller_data:process_user_data one per due user, dedup key seller-data:user:<id>
```

The schedule fires once per tick however many schedulers run (the engine's
compare-and-set on the tick), and the per-user dedup key means a user whose
job is still pending, scheduled or running gets no second one: the tick
reports them as `already_live`. Workers serve the `seller-data` queue in
their own processes; nothing here runs in the API process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor import Backoff, Clock, Conveyor, ExponentialBackoff, JobContext, JobType, SystemClock
from conveyor.commerce.connectors.seller_api import DEFAULT_TOKEN_URL, REGION_ENDPOINTS
from conveyor.commerce.db import create_engine_for, session_factory
from conveyor.commerce.tenancy import Owned, Ownership

from .fetch import Endpoints
from .process import UserDataProcessor
from .store import SellerDataStore

SCHEDULE = "seller_data:hourly"
QUEUE = "seller-data"
TICK_QUEUE = "seller-data-tick"
DEDUP_PREFIX = "seller-data:user:"


def dedup_key(user_id: int) -> str:
    return f"{DEDUP_PREFIX}{user_id}"


@dataclass(frozen=True)
class SellerDataJobs:
    """The job types `register` declared."""

    enqueue_due_users: JobType[Any, Any]
    process_user_data: JobType[Any, Any]


def register(
    app: Conveyor,
    *,
    catalog_url: str,
    sp_api_base_urls: Mapping[str, str] = REGION_ENDPOINTS,
    token_url: str = DEFAULT_TOKEN_URL,
    clock: Clock | None = None,
    cron: str | None = "0 * * * *",
    every: float | None = None,
    stale_after: float = 3600.0,
    window_days: int = 30,
    connector_timeout: float = 30.0,
    attempts: int = 4,
    backoff: Backoff | Sequence[float] | None = None,
) -> SellerDataJobs:
    """Declare the seller-data schedule and job types on `app`, with its tables at `catalog_url`.

    `every` (seconds) replaces `cron` when given. A user is due once their
    last update is `stale_after` seconds old; orders are read back
    `window_days`. `attempts` = 4 is the first run plus three retries, with
    exponential back-off unless `backoff` says otherwise. `clock` decides
    "now" for staleness and timestamps (pass the app's `FakeClock` in tests).
    """
    if stale_after < 0:
        raise ValueError(f"stale_after must be >= 0 seconds, got {stale_after}")
    clock = clock or SystemClock()
    sessions = session_factory(create_engine_for(catalog_url))
    store = SellerDataStore(sessions)
    processor = UserDataProcessor(
        store=store,
        endpoints=Endpoints(dict(sp_api_base_urls), token_url),
        clock=clock,
        window_days=window_days,
        timeout=connector_timeout,
    )
    retry = backoff if backoff is not None else ExponentialBackoff(base=5.0, maximum=300.0)

    ownership = Ownership(sessions)

    @app.job(
        "seller_data:process_user_data",
        queue=QUEUE,
        attempts=attempts,
        backoff=retry,
        tenant_guard=ownership.guard(user_id=Owned.SELLER_USER),
    )
    async def process_user_data(
        ctx: JobContext, user_id: int, requested_at: float | None = None
    ) -> dict[str, Any]:
        """Fetch, analyse and cache every seller account of one user; `requested_at` is the tick."""
        return await processor.run(ctx, user_id)

    @app.job(
        "seller_data:enqueue_due_users",
        queue=TICK_QUEUE,
        attempts=3,
        backoff=[5, 30],
        tenants=False,
    )
    async def enqueue_due_users(ctx: JobContext) -> dict[str, Any]:
        """Only enqueue: one `process_user_data` per due user, none for a user whose job is still live."""
        tick = ctx.job.run_at
        due = await asyncio.to_thread(store.users_due, clock.now(), stale_after)
        enqueued: list[int] = []
        live: list[int] = []
        for user_id in due:
            options = process_user_data.options(dedup_key=dedup_key(user_id), user_id=str(user_id))
            job = await options.enqueue(user_id=user_id, requested_at=tick)
            if job.payload.get("requested_at") == tick:
                enqueued.append(user_id)
            else:  # the dedup key handed back the job an earlier tick enqueued
                live.append(user_id)
        ctx.progress(100, f"{len(enqueued)} user(s) enqueued, {len(live)} already queued or running")
        return {"tick": tick, "enqueued": enqueued, "already_live": live}

    app.schedule(cron=None if every is not None else cron, every=every, name=SCHEDULE)(enqueue_due_users)
    return SellerDataJobs(enqueue_due_users, process_user_data)
