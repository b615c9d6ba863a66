"""The supplier sync as engine flows: supplier job → family jobs → image jobs.

```
suppliers:sync     queue "suppliers" (1 at a time): index → files → families → hash check;
│                  one family child per changed family; settles when they all ended
└─ suppliers:family   queue "families" (3): writes product + variants + picture slots;
   │                  records the family hash once every picture is stored
   └─ suppliers:image    queue "images" (10): download unless known, write unless stored, record
```

Children run with `on_failure="continue"`: one bad family or picture never
stops the rest; it shows as an error in the parent's result, and a family
whose pictures did not all arrive keeps its old hash, so the next sync
retries it (its pictures already stored are not fetched again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor import Conveyor, JobContext, JobState, JobType, Unrecoverable
from conveyor.commerce.tenancy import Owned, Ownership

from .feed import BadFile
from .grouping import Family
from .pipeline import STEPS, Report, SupplierPipeline
from .store import ImageSlot, SupplierRef, UnknownSupplier

SUPPLIER_QUEUE = "suppliers"
FAMILY_QUEUE = "families"
IMAGE_QUEUE = "images"
QUEUE_CONCURRENCY = {SUPPLIER_QUEUE: 1, FAMILY_QUEUE: 3, IMAGE_QUEUE: 10}
"""Pass as `Conveyor(..., concurrency=QUEUE_CONCURRENCY)` or set CONVEYOR_CONCURRENCY_SUPPLIERS=1,
CONVEYOR_CONCURRENCY_FAMILIES=3, CONVEYOR_CONCURRENCY_IMAGES=10: one sync at a time keeps the feed
from being hammered, while writes and downloads fan out."""

_CONTINUE = {"on_failure": "continue"}


@dataclass(frozen=True)
class SupplierJobs:
    sync: JobType[Any, Any]
    family: JobType[Any, Any]
    image: JobType[Any, Any]


def job_report(ctx: JobContext) -> Report:
    """Progress for live views, and a log line per step so the sequence stays visible afterwards."""

    def report(percent: float, step: str, message: str) -> None:
        ctx.progress(percent, message, step=step)
        ctx.log(f"{step} ({percent:g}%): {message}")

    return report


def declare(
    app: Conveyor,
    pipeline: SupplierPipeline,
    ownership: Ownership,
    *,
    attempts: int,
    backoff: Sequence[float],
) -> SupplierJobs:
    """Declare the three job types on `app`, all running `pipeline`, each held to its tenant's rows."""

    def job(name: str, queue: str, **owned: Owned) -> Callable[[Callable[..., Any]], JobType[Any, Any]]:
        guard = ownership.guard(supplier_id=Owned.SUPPLIER, **owned)
        return app.job(name, queue=queue, attempts=attempts, backoff=backoff, tenant_guard=guard)

    @job("suppliers:image", IMAGE_QUEUE, product_id=Owned.PRODUCT)
    async def image(supplier_id: int, product_id: int, url: str, position: int) -> dict[str, Any]:
        """Store one picture; a picture the host does not have (4xx) fails at once, retrying cannot help."""
        slot = ImageSlot(url, position, None)
        feed = pipeline.feed(pipeline.shared_client())
        try:
            outcome = await pipeline.store_image(feed, supplier_id, product_id, slot)
        except BadFile as e:
            raise Unrecoverable(str(e)) from e
        return {
            "downloaded": outcome.downloaded,
            "written": outcome.written,
            "content_hash": outcome.content_hash,
        }

    @job("suppliers:family", FAMILY_QUEUE, store_id=Owned.STORE)
    async def family(
        ctx: JobContext, supplier_id: int, supplier: str, store_id: int, data: dict[str, Any]
    ) -> dict[str, Any]:
        """Write the family; fan out its new pictures, or record the hash at once when there are none."""
        ref, parsed = SupplierRef(supplier_id, supplier, store_id), Family.model_validate(data)
        written = await pipeline.write_family(ref, parsed)
        ctx.progress(50, f"product {parsed.sku}: {len(parsed.variants)} variants", step="product_written")
        if written.to_store:
            await ctx.spawn_many(
                image.options(**_CONTINUE),
                [
                    {
                        "supplier_id": supplier_id,
                        "product_id": written.product_id,
                        "url": s.url,
                        "position": s.position,
                    }
                    for s in written.to_store
                ],
            )
            return {"product_id": written.product_id, "sku": parsed.sku, "images": len(written.to_store)}
        await pipeline.finish_family(ref, parsed, written.product_id)
        return {"product_id": written.product_id, "sku": parsed.sku, "images": 0}

    @family.on_children_done
    async def family_done(
        ctx: JobContext, supplier_id: int, supplier: str, store_id: int, data: dict[str, Any]
    ) -> dict[str, Any]:
        """Record the hash only when every picture is stored; otherwise fail so the next sync retries."""
        first = dict(ctx.job.result or {})
        failed = [child for child in await ctx.children() if child.state is not JobState.COMPLETED]
        if failed:
            raise Unrecoverable(f"{len(failed)} of {first['images']} pictures could not be stored")
        ref, parsed = SupplierRef(supplier_id, supplier, store_id), Family.model_validate(data)
        await pipeline.finish_family(ref, parsed, int(first["product_id"]))
        return first

    @job("suppliers:sync", SUPPLIER_QUEUE)
    async def sync(ctx: JobContext, supplier_id: int) -> dict[str, Any]:
        """Plan the supplier's sync and add one family child per changed family."""
        started = ctx.app.clock.now()
        try:
            (supplier,) = await asyncio.to_thread(pipeline.store.suppliers, supplier_id)
        except UnknownSupplier as e:
            raise Unrecoverable(str(e)) from e
        report = job_report(ctx)
        plan = await pipeline.plan(supplier, report)
        for problem in plan.problems:
            ctx.bag_error("feed", problem, item=problem.partition(":")[0])
        payloads = [
            {
                "supplier_id": supplier.id,
                "supplier": supplier.code,
                "store_id": supplier.store_id,
                "data": f.model_dump(mode="json"),
            }
            for f in plan.changed
        ]
        summary = {
            "supplier": supplier.code,
            "families": plan.families,
            "skipped": plan.skipped,
            "feed_errors": len(plan.problems),
            "started": started,
        }
        if payloads:
            await ctx.spawn_many(family.options(**_CONTINUE), payloads)
        report(STEPS["enqueueing_families"], "enqueueing_families", f"{len(payloads)} family jobs added")
        if payloads:
            return summary  # sync_done finishes once the families have ended
        return await _finish(ctx, pipeline, summary, processed=0, failed=0)

    @sync.on_children_done
    async def sync_done(ctx: JobContext, supplier_id: int) -> dict[str, Any]:
        children = await ctx.children()
        processed = sum(child.state is JobState.COMPLETED for child in children)
        return await _finish(ctx, pipeline, dict(ctx.job.result or {}), processed, len(children) - processed)

    return SupplierJobs(sync, family, image)


async def _finish(
    ctx: JobContext, pipeline: SupplierPipeline, summary: dict[str, Any], processed: int, failed: int
) -> dict[str, Any]:
    await asyncio.to_thread(pipeline.store.finish_supplier, ctx.job.payload["supplier_id"])
    errors = int(summary["feed_errors"]) + failed
    message = f"{processed} families written, {summary['skipped']} unchanged, {errors} errors"
    job_report(ctx)(STEPS["done"], "done", message)
    return {
        "supplier": summary["supplier"],
        "families": summary["families"],
        "products_processed": processed,
        "skipped": summary["skipped"],
        "errors": errors,
        "duration_seconds": round(ctx.app.clock.now() - float(summary["started"]), 3),
    }
