"""Campaign publishing (seed 000) as engine flows: campaign → account → chunk → shipment → batch → phases.

```
campaign:process          marks the campaign publishing; phases product_data/variants/images
└─ campaign:marketplace   one per account: the marketplace's process tracker
   └─ campaign:publish    5 products (chunking marketplaces) or all of them (bulk); validates,
      │                   bags invalid products, binds the rest to a ledger shipment
      └─ campaign:optimized   claims the shipment; batches of 10, `stagger` s apart; closes it
         └─ campaign:batch    runs the phases one after another (one stage per phase)
            ├─ publish:product_data → publish:variants → publish:images
            └─ publish:tally  per phase: what went through, and what did not (failed)
```

Every child is spawned with `on_failure="continue"`, so a failed chunk never
stops the others; its failure shows in the tracker and the error bag, and its
products stay undelivered in the ledger so the next run picks them up. Phase
jobs carry the account's key, so the engine's per-account limiter (fed from
the marketplace's own rate-limit readings) paces them; inside a process the
account's connectors share a pacer, short 429s are waited out in the
connector, and longer ones re-delay the job without spending an attempt.
Payloads hold ids only: credentials are resolved from the account's
`credentials_ref` inside the phase job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from conveyor import Clock, Conveyor, JobContext, JobState, JobType, PhaseSpec, SystemClock, Unrecoverable
from conveyor.commerce.catalog import CampaignStatus
from conveyor.commerce.connectors import RetryPolicy
from conveyor.commerce.db import create_engine_for, session_factory
from conveyor.commerce.ledger import Ledger
from conveyor.commerce.tenancy import Owned, Ownership

from . import catalog_io
from .phases import PHASES, PhaseRunner

JOB_KIND = "publish"
"""The ledger's job kind for campaign publishing: one delivery record per product version and account."""


PHASE_RETRY = RetryPolicy(transient_tries=3, backoff=0.5, rate_limit_tries=6, max_rate_wait=2.0)
"""A phase job absorbs lone 5xx on reads and updates, and 429s with a short wait, without restarting."""


def expected_phases(listings: int) -> dict[str, PhaseSpec]:
    """Every phase expects each listing once, so a tracker's percent only grows as chunks fan out.

    Products refused by validation never reach the phases: the campaign then
    shows a little under 100 % until it ends.
    """
    return {phase: PhaseSpec(weight=1, total=listings) for phase in PHASES}


@dataclass(frozen=True)
class CampaignJobs:
    """The job types `register` declared; enqueue `process` with a campaign id to publish it."""

    process: JobType[Any, Any]
    marketplace: JobType[Any, Any]
    publish: JobType[Any, Any]
    optimized: JobType[Any, Any]
    batch: JobType[Any, Any]
    phases: dict[str, JobType[Any, Any]]


def register(
    app: Conveyor,
    *,
    catalog_url: str,
    clock: Clock | None = None,
    chunk_size: int = 5,
    batch_size: int = 10,
    stagger: float = 1.0,
    connector_timeout: float = 30.0,
    phase_attempts: int = 6,
    phase_backoff: Sequence[float] = (5, 30, 120),
    shipment_lease: float = 3600.0,
    retry: RetryPolicy = PHASE_RETRY,
) -> CampaignJobs:
    """Declare the campaign job types on `app`, publishing from the catalog at `catalog_url`.

    `clock` drives the connectors' and the ledger's notion of now (pass the
    app's `FakeClock` in tests); `shipment_lease` must outlast a shipment's
    whole publication, rate-limit waits included. `retry` is how often a
    connector repeats a request itself before the phase job fails or is
    re-delayed (which restarts its whole batch).
    """
    clock = clock or SystemClock()
    sessions = session_factory(create_engine_for(catalog_url))
    ledger = Ledger(sessions, clock=clock, lease_seconds=shipment_lease)
    runner = PhaseRunner(sessions, ledger, clock, connector_timeout, retry)
    continue_on_failure = {"on_failure": "continue"}
    ownership = Ownership(sessions)
    campaign, account = Owned.CAMPAIGN, Owned.ACCOUNT
    shipment, products = Owned.SHIPMENT, Owned.PRODUCT

    phases = {
        phase: app.job(
            f"publish:{phase}",
            queue="marketplace",
            attempts=phase_attempts,
            backoff=phase_backoff,
            tenant_guard=ownership.guard(account_id=account, shipment_id=shipment, products=products),
        )(runner.handler(phase))
        for phase in PHASES
    }

    @app.job("publish:tally", queue="campaigns")
    async def tally(ctx: JobContext, refused: str | None = None) -> None:
        """A phase's outcome as the tracker counts it: the job weighs its products; a refusal fails it."""
        if refused is not None:
            raise Unrecoverable(refused)

    async def count(ctx: JobContext, phase: str, entered: list[int], through: list[int]) -> None:
        """Label the phase's products by outcome, so its done count is only the ones that went through."""
        if through:
            await ctx.spawn(tally.options(phase=phase, weight=len(through), **continue_on_failure))
        if missing := len(entered) - len(through):
            reason = f"{missing} product(s) did not get through {phase}"
            await ctx.spawn(tally.options(phase=phase, weight=missing, **continue_on_failure), refused=reason)

    @app.job(
        "campaign:batch",
        queue="campaigns",
        tenant_guard=ownership.guard(
            campaign_id=campaign, account_id=account, shipment_id=shipment, items=products
        ),
    )
    async def batch(
        ctx: JobContext, campaign_id: int, account_id: int, key: str, shipment_id: int, items: list[int]
    ) -> dict[str, Any]:
        """One stage per phase, each with the previous phase's survivors; a last stage to finish.

        The phase jobs themselves are not labelled: their weight would be fixed
        before the marketplace had its say. The tallies spawned after each phase
        carry the label, weighing what went through and what did not.
        """
        products, remote = items, {}
        if ctx.stage > 0:
            children = await ctx.children()
            ended = PHASES[ctx.stage - 1] if ctx.stage <= len(PHASES) else None
            ran = next((c for c in children if ended and c.type == phases[ended].name), None)
            if ran is None:  # the previous stage only counted
                through = [c for c in children if c.phase == PHASES[-1] and c.state is JobState.COMPLETED]
                return {"published": int(sum(c.weight for c in through))}
            if ran.state is JobState.COMPLETED:
                remote = ran.result["remote"]
            products = [int(pid) for pid in remote]
            await count(ctx, PHASES[ctx.stage - 1], ran.payload["products"], products)
            if ctx.stage == len(PHASES) or not products:
                return {}
        phase = PHASES[ctx.stage]
        job = phases[phase].options(key=key, weight=len(products), **continue_on_failure)
        await ctx.spawn(job, account_id=account_id, shipment_id=shipment_id, products=products, remote=remote)
        return {}

    batch.on_children_done(batch.fn)

    @app.job(
        "campaign:optimized",
        queue="campaigns",
        tenant_guard=ownership.guard(campaign_id=campaign, account_id=account, shipment_id=shipment),
    )
    async def optimized(
        ctx: JobContext, campaign_id: int, account_id: int, key: str, shipment_id: int
    ) -> dict[str, Any]:
        """Claim the shipment; split what it still holds into batches, `stagger` s apart."""
        claimed = await asyncio.to_thread(ledger.claim, shipment_id, ctx.job.id)
        if claimed is None:
            return {"skipped": "another run holds the shipment"}
        pending = [item.product_id for item in claimed.pending]
        if not pending:
            await asyncio.to_thread(ledger.finish, shipment_id, ctx.job.id)
            return {"batches": 0}
        extra = {"campaign_id": campaign_id, "account_id": account_id, "key": key, "shipment_id": shipment_id}
        job = batch.options(**continue_on_failure)
        ids = await ctx.spawn_chunks(job, pending, size=batch_size, stagger=stagger, extra=extra)
        return {"batches": len(ids)}

    @optimized.on_children_done
    async def optimized_done(
        ctx: JobContext, campaign_id: int, account_id: int, key: str, shipment_id: int
    ) -> dict[str, Any]:
        """Close the shipment: versions a failed batch left pending go back to the pool for the next run."""
        info = await asyncio.to_thread(ledger.finish, shipment_id, ctx.job.id)
        return {"delivered": sum(item.status == "delivered" for item in info.items)}

    @app.job(
        "campaign:publish",
        queue="campaigns",
        tenant_guard=ownership.guard(campaign_id=campaign, account_id=account, items=products),
    )
    async def publish(
        ctx: JobContext, campaign_id: int, account_id: int, key: str, items: list[int]
    ) -> dict[str, Any]:
        """Validate a chunk, bag the invalid products, and ship the rest through the ledger."""
        checked = await asyncio.to_thread(catalog_io.check_products, sessions, items)
        for product in checked:
            if product.reason is not None:
                ctx.bag_error(
                    "validation", product.reason, item=product.sku or f"product {product.product_id}"
                )
        valid = [p.product_id for p in checked if p.reason is None]
        if not valid:
            return {"invalid": len(checked), "shipped": 0}
        shipment = await asyncio.to_thread(
            ledger.create_shipment,
            ctx.job.id,
            target=account_id,
            job_kind=JOB_KIND,
            extractor="all",
            product_ids=valid,
        )
        if shipment.items:
            extra = {"campaign_id": campaign_id, "account_id": account_id, "key": key}
            await ctx.spawn(optimized.options(**continue_on_failure), shipment_id=shipment.id, **extra)
        return {"invalid": len(checked) - len(valid), "shipped": len(shipment.items)}

    @app.job(
        "campaign:marketplace",
        queue="campaigns",
        tenant_guard=ownership.guard(campaign_id=campaign, account_id=account, product_ids=products),
    )
    async def marketplace(ctx: JobContext, campaign_id: int, account_id: int, product_ids: list[int]) -> None:
        """The account's process tracker: resume crashed shipments, then chunk or publish in bulk."""
        ctx.set_phases(expected_phases(len(product_ids)))
        kind = await asyncio.to_thread(catalog_io.account_kind, sessions, account_id)
        if kind not in runner.marketplaces:
            raise Unrecoverable(f"campaigns cannot publish to {kind} yet")
        key = f"{kind}:{account_id}"
        extra = {"campaign_id": campaign_id, "account_id": account_id, "key": key}
        for stale in await asyncio.to_thread(ledger.unprocessed_shipments, account_id, JOB_KIND):
            await ctx.spawn(optimized.options(**continue_on_failure), shipment_id=stale.id, **extra)
        job = publish.options(**continue_on_failure)
        if runner.marketplaces[kind].chunking:
            await ctx.spawn_chunks(job, product_ids, size=chunk_size, stagger=stagger, extra=extra)
        else:
            await ctx.spawn(job.options(weight=len(product_ids)), items=product_ids, **extra)

    @app.job("campaign:process", queue="campaigns", tenant_guard=ownership.guard(campaign_id=campaign))
    async def process(ctx: JobContext, campaign_id: int) -> dict[str, Any] | None:
        """Mark the campaign publishing and fan out one marketplace job per account."""
        groups = await asyncio.to_thread(catalog_io.start_campaign, sessions, campaign_id)
        ctx.set_phases(expected_phases(sum(len(ids) for ids in groups.values())))
        for account_id, product_ids in groups.items():
            job = marketplace.options(**continue_on_failure)
            await ctx.spawn(job, campaign_id=campaign_id, account_id=account_id, product_ids=product_ids)
        return None if groups else await settle(ctx, campaign_id)

    async def settle(ctx: JobContext, campaign_id: int) -> dict[str, Any]:
        """Settle the campaign from the tracker: the images phase's `done` counts fully published products."""
        tracker = await ctx.app.tracker(ctx.job.id)
        counts = {phase.name: phase for phase in tracker.phases}
        total = sum(len(child.payload["product_ids"]) for child in await ctx.children())
        published = int(counts["images"].done) if "images" in counts else 0
        failed = tracker.errors.get("validation", 0) + int(sum(p.failed for p in counts.values()))
        clean = not tracker.errors and not failed
        status = CampaignStatus.PUBLISHED if clean else CampaignStatus.PARTIALLY_PUBLISHED
        await asyncio.to_thread(catalog_io.finish_campaign, sessions, campaign_id, status, published, failed)
        return {"status": str(status), "total": total, "published": published, "errors": dict(tracker.errors)}

    process.on_children_done(settle)

    return CampaignJobs(process, marketplace, publish, optimized, batch, phases)
