"""Trackers: weighted phases, percentages and error bags over a job tree, exactly."""

from __future__ import annotations

from conveyor import Conveyor, FakeClock, JobContext, JobState, PhaseSpec, Unrecoverable

from .conftest import Drain

PHASES = ("product_data", "variants", "images")
GOOD_MARKETPLACES = 10
CHUNKS = 10
LEAVES = 10


def phase_of(i: int) -> str:
    return PHASES[i % 3]


def leaf_fails(c: int, i: int) -> bool:
    return phase_of(i) == "images" and (c + i) % 7 == 0


def product_invalid(m: int, c: int, i: int) -> bool:
    return (m * 100 + c * 10 + i) % 97 == 0


async def test_depth_four_flow_with_1000_leaves_is_tracked_exactly(app: Conveyor, drain: Drain) -> None:
    @app.job("publish:phase", queue="phases", attempts=1)
    async def phase_job(m: int, c: int, i: int) -> None:
        if leaf_fails(c, i):
            raise Unrecoverable("image too large")

    @app.job("publish:chunk", queue="chunks", attempts=1)
    async def chunk(ctx: JobContext, m: int, c: int) -> None:
        if m == GOOD_MARKETPLACES:
            raise Unrecoverable("Invalid Credentials")
        for i in range(LEAVES):
            if product_invalid(m, c, i):
                ctx.bag_error("validation", "missing price", item=f"sku-{m}-{c}-{i}")
        for phase in PHASES:
            await ctx.spawn_many(
                phase_job.options(phase=phase, on_failure="continue"),
                [{"m": m, "c": c, "i": i} for i in range(LEAVES) if phase_of(i) == phase],
            )

    @app.job("publish:marketplace", queue="marketplaces")
    async def marketplace(ctx: JobContext, m: int) -> None:
        if m == GOOD_MARKETPLACES:  # its first chunk fails under fail_parent; the rest wait an hour
            await ctx.spawn(chunk, m=m, c=0)
            await ctx.spawn_many(chunk.options(delay=3600), [{"m": m, "c": c} for c in range(1, CHUNKS)])
            return
        await ctx.spawn_many(chunk.options(on_failure="continue"), [{"m": m, "c": c} for c in range(CHUNKS)])

    @app.job("publish:campaign", queue="campaigns")
    async def campaign(ctx: JobContext) -> None:
        ctx.set_phases({"product_data": 1, "variants": 1, "images": PhaseSpec(weight=2, total=300)})
        await ctx.spawn_many(
            marketplace.options(on_failure="continue"), [{"m": m} for m in range(GOOD_MARKETPLACES + 1)]
        )

    root = await campaign.enqueue()
    await drain(concurrency=20)

    tree = await app.tracker(root.id)
    failing_leaves = sum(
        leaf_fails(c, i) for _ in range(GOOD_MARKETPLACES) for c in range(CHUNKS) for i in range(LEAVES)
    )
    invalid_products = sum(
        product_invalid(m, c, i)
        for m in range(GOOD_MARKETPLACES)
        for c in range(CHUNKS)
        for i in range(LEAVES)
    )
    assert failing_leaves > 0
    assert invalid_products > 0

    assert tree.job.state is JobState.COMPLETED
    assert tree.percent == 100
    phases = {p.name: (p.total, p.done, p.failed) for p in tree.phases}
    assert phases == {
        "product_data": (400, 400, 0),
        "variants": (300, 300, 0),
        "images": (300, 300 - failing_leaves, failing_leaves),
    }
    assert dict(tree.errors) == {
        "Unrecoverable": failing_leaves + 1,  # the leaves, and the bad marketplace's first chunk
        "ChildFailed": 1,  # the bad marketplace itself
        "validation": invalid_products,
    }
    leaves = GOOD_MARKETPLACES * CHUNKS * LEAVES
    assert leaves == 1000
    assert dict(tree.states) == {
        "completed": 1 + GOOD_MARKETPLACES * (1 + CHUNKS) + leaves - failing_leaves,
        "failed": failing_leaves + 2,
        "cancelled": CHUNKS - 1,
    }

    bad = next(n for n in tree.children if n.job.payload["m"] == GOOD_MARKETPLACES)
    assert bad.job.state is JobState.FAILED
    assert dict(bad.states) == {"failed": 2, "cancelled": CHUNKS - 1}
    good = next(n for n in tree.children if n.job.payload["m"] == 0)
    assert sum(good.states.values()) == 1 + CHUNKS + CHUNKS * LEAVES
    assert good.errors["validation"] == sum(
        product_invalid(0, c, i) for c in range(CHUNKS) for i in range(LEAVES)
    )


async def test_percent_is_the_weighted_sum_of_phases_while_running(
    app: Conveyor, clock: FakeClock, drain: Drain
) -> None:
    @app.job("leaf")
    async def leaf() -> None: ...

    @app.job("root")
    async def root(ctx: JobContext) -> None:
        ctx.set_phases({"fast": 1, "slow": PhaseSpec(weight=3, total=10)})
        await ctx.spawn_many(leaf.options(phase="fast"), [{}] * 2)
        await ctx.spawn_many(leaf.options(phase="slow"), [{}] * 4)
        await ctx.spawn_many(leaf.options(phase="slow", delay=60), [{}] * 4)

    job = await root.enqueue()
    await drain()
    tracker = await app.tracker(job.id)
    assert {p.name: (p.total, p.done) for p in tracker.phases} == {"fast": (2, 2), "slow": (10, 4)}
    assert tracker.percent == (1 * 1.0 + 3 * 0.4) / 4 * 100
    clock.advance(60)
    await drain()
    assert (await app.tracker(job.id)).percent == 100


async def test_children_percent_rolls_up_by_weight(app: Conveyor, drain: Drain) -> None:
    @app.job("leaf")
    async def leaf(ctx: JobContext, stop: bool) -> None:
        ctx.progress(50)
        if stop:
            raise ConnectionError("keep it half done")

    @app.job("root")
    async def root(ctx: JobContext) -> None:
        await ctx.spawn(leaf.options(weight=3), stop=False)
        await ctx.spawn(leaf.options(weight=1), stop=True)

    job = await root.enqueue()
    await drain()
    tracker = await app.tracker(job.id)
    assert [c.percent for c in tracker.children] == [100, 50]
    assert tracker.percent == (3 * 100 + 1 * 50) / 4


async def test_bag_errors_are_kept_once_per_item(app: Conveyor, drain: Drain) -> None:
    @app.job("chunk", backoff=[0], attempts=2)
    async def chunk(ctx: JobContext) -> None:
        ctx.bag_error("validation", "missing SKU", item="p-1")
        ctx.bag_error("validation", "missing price", item="p-2")
        if ctx.attempt == 1:
            raise ConnectionError("retry me")

    job = await chunk.enqueue()
    await drain()
    tracker = await app.tracker(job.id)
    assert tracker.errors == {"validation": 2}
    assert sorted(e.item for e in tracker.bag) == ["p-1", "p-2"]
