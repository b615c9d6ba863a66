"""A campaign fans out per marketplace, into chunks, into phase jobs; a tracker follows it all."""

import asyncio

from conveyor import Conveyor, FakeClock, JobContext, PhaseSpec, RateLimit, Unrecoverable

clock = FakeClock()  # the example moves time itself instead of waiting
app = Conveyor("sqlite:///campaign.db", clock=clock)
PHASES = ("product_data", "variants", "images")


@app.job("publish:phase", queue="marketplace", rate_limit=RateLimit(20, per=1))
async def publish_phase(marketplace: str, phase: str, skus: list[str]) -> int:
    if phase == "images" and "SKU-13" in skus:
        raise Unrecoverable("image too large")
    return len(skus)


@app.job("publish:chunk", queue="campaigns")
async def publish_chunk(ctx: JobContext, marketplace: str, items: list[str]) -> None:
    valid = [sku for sku in items if not sku.endswith("7")]
    for sku in set(items) - set(valid):
        ctx.bag_error("validation", "price missing", item=sku)
    for phase in PHASES:
        job = publish_phase.options(key=f"{marketplace}-account", phase=phase, weight=len(valid))
        await ctx.spawn(job.options(on_failure="continue"), marketplace=marketplace, phase=phase, skus=valid)


@app.job("publish:campaign", queue="campaigns")
async def publish_campaign(ctx: JobContext, skus: list[str]) -> None:
    ctx.set_phases({phase: PhaseSpec(weight=1) for phase in PHASES})
    for marketplace in ("jumpseller", "shopify"):
        chunk = publish_chunk.options(on_failure="continue")
        await ctx.spawn_chunks(chunk, skus, size=5, stagger=1.0, extra={"marketplace": marketplace})


@publish_campaign.on_children_done
async def campaign_done(ctx: JobContext, skus: list[str]) -> str:
    tracker = await ctx.app.tracker(ctx.job.id)
    return "published" if not tracker.errors else "partially_published"


async def main() -> None:
    campaign = await publish_campaign.enqueue(skus=[f"SKU-{n}" for n in range(20)])
    for _ in range(10):
        await app.worker(burst=True).run()
        clock.advance(1)
    tracker = await app.tracker(campaign.id)
    done = await app.get_job(campaign.id)
    print(done.result, f"{tracker.percent:.0f}%", dict(sorted(tracker.errors.items())))
    for phase in tracker.phases:
        print(f"{phase.name}: {phase.done:g} done, {phase.failed:g} failed of {phase.total:g}")
    await app.close()


if __name__ == "__main__":
    asyncio.run(main())
