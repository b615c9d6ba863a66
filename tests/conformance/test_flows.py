"""Flows: children, waiting parents, failure policies, cascading cancel, up-front trees."""

from __future__ import annotations

import pytest

from conveyor import (
    Conveyor,
    FakeClock,
    Flow,
    InvalidStateTransition,
    JobContext,
    JobFilter,
    JobState,
    PayloadError,
    Unrecoverable,
)

from .conftest import Drain


async def test_parent_waits_for_children_then_runs_its_completion_step(app: Conveyor, drain: Drain) -> None:
    @app.job("images:upload", queue="images")
    async def upload(n: int) -> int:
        return n * 10

    @app.job("families:sync", queue="families")
    async def sync(ctx: JobContext, family: str) -> str:
        for n in range(3):
            await ctx.spawn(upload, n=n)
        return "spawned"

    @sync.on_children_done
    async def sync_done(ctx: JobContext, family: str) -> dict[str, object]:
        children = await ctx.children()
        return {"family": family, "uploaded": sorted(c.result for c in children), "stage": ctx.stage}

    parent = await sync.enqueue(family="A-100")
    await drain(queues=["families"])
    waiting = await app.get_job(parent.id)
    assert (waiting.state, waiting.children_total, waiting.children_pending) == (
        JobState.WAITING_CHILDREN,
        3,
        3,
    )
    await drain()
    done = await app.get_job(parent.id)
    assert done.state is JobState.COMPLETED
    assert done.result == {"family": "A-100", "uploaded": [0, 10, 20], "stage": 1}
    roots = await app.list_jobs(JobFilter(roots_only=True))
    assert [job.id for job in roots.jobs] == [parent.id]
    assert len((await app.list_jobs(JobFilter(parent_id=parent.id))).jobs) == 3


async def test_parent_without_completion_step_completes_with_its_own_result(
    app: Conveyor, drain: Drain
) -> None:
    @app.job("images:upload")
    async def upload() -> None: ...

    @app.job("families:sync")
    async def sync(ctx: JobContext) -> str:
        await ctx.spawn(upload)
        return "families enqueued"

    parent = await sync.enqueue()
    await drain()
    done = await app.get_job(parent.id)
    assert (done.state, done.result, done.children_pending) == (JobState.COMPLETED, "families enqueued", 0)


async def test_fail_parent_policy_fails_parent_and_cancels_siblings(
    app: Conveyor, clock: FakeClock, drain: Drain
) -> None:
    @app.job("publish:chunk", attempts=1)
    async def chunk(n: int) -> None:
        if n == 0:
            raise Unrecoverable("Invalid Credentials")

    @app.job("publish:marketplace")
    async def marketplace(ctx: JobContext) -> None:
        await ctx.spawn(chunk, n=0)
        await ctx.spawn(chunk.options(delay=60), n=1)

    parent = await marketplace.enqueue()
    await drain()
    failed = await app.get_job(parent.id)
    assert failed.state is JobState.FAILED
    assert failed.error is not None
    assert failed.error.type == "ChildFailed"
    assert "Unrecoverable: Invalid Credentials" in failed.error.message
    states = sorted(c.state.value for c in await app.children(parent.id))
    assert states == ["cancelled", "failed"]
    clock.advance(120)
    assert (await drain()).processed == 0


async def test_continue_policy_keeps_going_and_bags_the_error(app: Conveyor, drain: Drain) -> None:
    @app.job("publish:chunk", attempts=1)
    async def chunk(n: int) -> int:
        if n == 1:
            raise Unrecoverable("Product Validation Failed")
        return n

    @app.job("publish:marketplace")
    async def marketplace(ctx: JobContext) -> None:
        await ctx.spawn_many(chunk.options(on_failure="continue"), [{"n": n} for n in range(3)])

    @marketplace.on_children_done
    async def finished(ctx: JobContext) -> dict[str, int]:
        children = await ctx.children()
        return {
            "ok": sum(c.state is JobState.COMPLETED for c in children),
            "failed": sum(c.state is JobState.FAILED for c in children),
        }

    parent = await marketplace.enqueue()
    await drain()
    done = await app.get_job(parent.id)
    assert (done.state, done.result) == (JobState.COMPLETED, {"ok": 2, "failed": 1})
    tracker = await app.tracker(parent.id)
    assert dict(tracker.errors) == {"Unrecoverable": 1}


async def test_cancelling_a_parent_cancels_its_unfinished_descendants(
    app: Conveyor, clock: FakeClock, drain: Drain
) -> None:
    @app.job("leaf")
    async def leaf() -> None: ...

    @app.job("middle")
    async def middle(ctx: JobContext) -> None:
        await ctx.spawn(leaf.options(delay=60))
        await ctx.spawn(leaf.options(delay=60))

    @app.job("root")
    async def root(ctx: JobContext) -> None:
        await ctx.spawn(middle)
        await ctx.spawn(leaf.options(delay=60))

    parent = await root.enqueue()
    await drain()
    tree = await app.tracker(parent.id)
    assert tree.states["waiting_children"] == 2
    assert tree.states["scheduled"] == 3
    await app.cancel(parent.id)
    after = await app.tracker(parent.id)
    assert dict(after.states) == {"cancelled": 5}
    clock.advance(120)
    assert (await drain()).processed == 0


async def test_flow_built_up_front_runs_children_first(app: Conveyor, drain: Drain) -> None:
    order: list[str] = []

    @app.job("step")
    async def step(name: str) -> str:
        order.append(name)
        return name

    @app.job("gather")
    async def gather(ctx: JobContext, name: str) -> list[str]:
        order.append(name)
        return [c.result for c in await ctx.children()]

    flow = Flow(
        gather,
        {"name": "root"},
        children=[
            Flow(step, {"name": "a"}),
            Flow(gather, {"name": "mid"}, children=[Flow(step, {"name": "b"}), Flow(step, {"name": "c"})]),
        ],
    )
    root = await app.enqueue_flow(flow)
    assert root.state is JobState.WAITING_CHILDREN
    assert (await app.stats()).total == 5
    await drain()
    done = await app.get_job(root.id)
    assert done.state is JobState.COMPLETED
    assert done.result == ["a", ["b", "c"]]
    assert order.index("mid") > max(order.index("b"), order.index("c"))
    assert order[-1] == "root"


async def test_a_retried_parent_gets_the_same_children_back(app: Conveyor, drain: Drain) -> None:
    runs = []

    @app.job("child")
    async def child(n: int) -> None: ...

    @app.job("parent", backoff=[0])
    async def parent(ctx: JobContext) -> None:
        runs.append(ctx.attempt)
        await ctx.spawn_many(child.options(delay=3600), [{"n": n} for n in range(3)])
        if ctx.attempt == 1:
            raise ConnectionError("crashed after spawning")

    job = await parent.enqueue()
    await drain()
    assert runs == [1, 2]
    stored = await app.get_job(job.id)
    assert (stored.state, stored.children_total) == (JobState.WAITING_CHILDREN, 3)
    assert len(await app.children(job.id)) == 3


async def test_spawn_chunks_splits_weights_and_staggers(
    app: Conveyor, clock: FakeClock, drain: Drain
) -> None:
    @app.job("publish:products")
    async def publish(items: list[int], marketplace: str) -> int:
        return len(items)

    @app.job("publish:campaign")
    async def campaign(ctx: JobContext) -> None:
        await ctx.spawn_chunks(publish, list(range(23)), size=5, stagger=1.0, extra={"marketplace": "js"})

    parent = await campaign.enqueue()
    start = clock.now()
    await drain()
    kids = await app.children(parent.id)
    assert [len(k.payload["items"]) for k in kids] == [5, 5, 5, 5, 3]
    assert [k.weight for k in kids] == [5, 5, 5, 5, 3]
    assert [k.run_at - start for k in kids] == [0, 1, 2, 3, 4]
    assert {k.payload["marketplace"] for k in kids} == {"js"}
    clock.advance(4)
    await drain()
    assert (await app.get_job(parent.id)).state is JobState.COMPLETED


async def test_children_of_a_finished_parent_are_refused(app: Conveyor, drain: Drain) -> None:
    @app.job("child")
    async def child() -> None: ...

    @app.job("parent")
    async def parent() -> None: ...

    job = await parent.enqueue()
    await drain()
    with pytest.raises(InvalidStateTransition, match="finished or cancelled"):
        await app.spawn_children(await app.get_job(job.id), child.options(), [{}], keys=["x"])


async def test_flows_built_up_front_refuse_dedup_keys_and_store_nothing(app: Conveyor) -> None:
    @app.job("step")
    async def step() -> None: ...

    flow = Flow(step, children=[Flow(step.options(dedup_key="once"))])
    with pytest.raises(PayloadError, match="dedup_key"):
        await app.enqueue_flow(flow)
    assert (await app.stats()).total == 0


async def test_children_belong_to_their_parents_tenant_and_user(app: Conveyor, drain: Drain) -> None:
    @app.job("child")
    async def child() -> None: ...

    @app.job("parent")
    async def parent(ctx: JobContext) -> None:
        await ctx.spawn(child)
        await ctx.spawn(child.options(tenant="store-2"))

    job = await parent.options(tenant="store-1", user_id="u-1").enqueue()
    await drain()
    kids = await app.children(job.id)
    assert [(k.tenant, k.user_id) for k in kids] == [("store-1", "u-1"), ("store-2", "u-1")]
