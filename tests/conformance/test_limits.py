"""Rate limits per key and per queue, limiter feeding, groups, fairness, breakers, key pauses."""

from __future__ import annotations

from conveyor import Conveyor, FakeClock, JobContext, JobFilter, JobState, RateLimited
from conveyor.backends.base import FetchParams
from conveyor.limits import Breaker, BreakerState, RateLimit

from .conftest import AppFactory, Drain


async def drain_over_time(
    app: Conveyor, clock: FakeClock, drain: Drain, seconds: float, step: float = 0.1
) -> None:
    for _ in range(round(seconds / step)):
        await drain()
        clock.advance(step)


async def starts(app: Conveyor, key: str) -> list[float]:
    page = await app.list_jobs(JobFilter(oldest_first=True), limit=1000)
    return sorted(j.started_at for j in page.jobs if j.key == key and j.started_at is not None)


async def test_a_key_limited_to_5_per_second_does_not_hold_back_other_keys(
    app: Conveyor, clock: FakeClock, drain: Drain
) -> None:
    @app.job("jumpseller:publish", rate_limit=RateLimit(5, per=1))
    async def publish(n: int) -> None: ...

    start = clock.now()
    await publish.options(key="account-a").enqueue_many({"n": n} for n in range(50))
    await publish.options(key="account-b").enqueue_many({"n": n} for n in range(5))
    await drain()
    assert await starts(app, "account-b") == [start] * 5  # all at once, not behind account-a
    await drain_over_time(app, clock, drain, 12)
    a = await starts(app, "account-a")
    assert len(a) == 50
    assert a[-1] - a[0] >= 9
    assert (await app.stats()).count(JobState.COMPLETED) == 55


async def test_queue_rate_limit_holds_across_workers(
    make_app: AppFactory, clock: FakeClock, drain: Drain
) -> None:
    apps = [make_app(queue_rate_limits={"images": RateLimit(10, per=1)}) for _ in range(2)]
    for app in apps:

        @app.job("images:upload", queue="images")
        async def upload(n: int) -> None: ...

    await apps[0].enqueue_many("images:upload", [{"n": n} for n in range(30)])
    first = clock.now()
    for _ in range(40):
        for app in apps:
            await drain(app)
        clock.advance(0.1)
    page = await apps[0].list_jobs(JobFilter(), limit=100)
    times = sorted(j.started_at or 0 for j in page.jobs)
    assert len(times) == 30
    assert sum(t == first for t in times) == 10  # the bucket's burst, shared by both workers
    assert times[-1] - first >= 1.9


async def test_rate_limited_feeds_the_key_so_its_other_jobs_wait(
    app: Conveyor, clock: FakeClock, drain: Drain
) -> None:
    calls: list[str] = []

    @app.job("shopify:publish")
    async def publish(n: int) -> None:
        calls.append(f"{n}")
        if n == 0 and calls.count("0") == 1:
            raise RateLimited(retry_after=30)

    await publish.options(key="shop-1").enqueue(n=0)
    await drain(concurrency=1)
    await publish.options(key="shop-1").enqueue_many({"n": n} for n in range(1, 4))
    await publish.options(key="shop-2").enqueue(n=99)
    await drain()
    assert calls == ["0", "99"]  # shop-1 waits for the remote's Retry-After
    clock.advance(30)
    await drain()
    assert sorted(calls) == ["0", "0", "1", "2", "3", "99"]


async def test_feeding_remaining_zero_waits_until_reset(
    app: Conveyor, clock: FakeClock, drain: Drain
) -> None:
    @app.job("ebay:publish")
    async def publish() -> None: ...

    await app.feed_limiter("ebay-acct", remaining=0, reset_at=clock.now() + 10)
    job = await publish.options(key="ebay-acct").enqueue()
    await drain()
    assert (await app.get_job(job.id)).state is JobState.PENDING
    clock.advance(10)
    await drain()
    assert (await app.get_job(job.id)).state is JobState.COMPLETED


async def test_group_concurrency_limits_each_group(app: Conveyor, clock: FakeClock) -> None:
    @app.job("supplier:sync", group_concurrency=1)
    async def sync(n: int) -> None: ...

    for group in ("supplier-a", "supplier-b"):
        await sync.options(group=group).enqueue_many({"n": n} for n in range(3))
    backend = await app.backend()
    now = clock.now()
    claimed = await backend.fetch(FetchParams("w1", {"default": 10}, now, now + 30))
    assert sorted(j.group for j in claimed) == ["supplier-a", "supplier-b"]
    again = await backend.fetch(FetchParams("w2", {"default": 10}, now, now + 30))
    assert again == []


async def test_fair_queue_serves_a_small_tenant_before_a_big_one_finishes(
    make_app: AppFactory, drain: Drain
) -> None:
    app = make_app(fair_queues="store-jobs")
    order: list[str] = []

    @app.job("shopify:import:products", queue="store-jobs")
    async def import_products(store: str, n: int) -> None:
        order.append(f"{store}-{n}")

    await import_products.options(tenant="store-a").enqueue_many({"store": "a", "n": n} for n in range(1000))
    await import_products.options(tenant="store-b").enqueue_many({"store": "b", "n": n} for n in range(10))
    await drain(app, concurrency=2)
    a_100th = order.index("a-99")
    assert all(order.index(f"b-{n}") < a_100th for n in range(10))
    assert len(order) == 1010


async def test_breaker_holds_a_broken_key_probes_once_then_resumes(
    app: Conveyor, clock: FakeClock, drain: Drain
) -> None:
    class AuthFailed(Exception):
        pass

    broken = {"seller-1"}
    runs: list[str] = []

    @app.job("seller:fetch", attempts=2, breaker=Breaker(on=(AuthFailed,), threshold=3, cooldown=60))
    async def fetch(account: str, n: int) -> None:
        runs.append(account)
        if account in broken:
            raise AuthFailed("token expired")

    await fetch.options(key="seller-1").enqueue_many({"account": "seller-1", "n": n} for n in range(6))
    await fetch.options(key="seller-2").enqueue_many({"account": "seller-2", "n": n} for n in range(3))
    await drain(concurrency=1)
    keys = {k.key: k for k in await app.keys()}
    assert keys["seller-1"].breaker is BreakerState.OPEN
    assert runs.count("seller-1") == 3
    assert runs.count("seller-2") == 3
    held = (await app.list_jobs(JobFilter(types=["seller:fetch"]), limit=100)).jobs
    assert {j.state for j in held if j.key == "seller-1"} <= {JobState.PENDING, JobState.SCHEDULED}
    assert all(j.attempts == 0 for j in held if j.key == "seller-1")  # held, not spent

    clock.advance(61)
    await drain(concurrency=10)
    assert runs.count("seller-1") == 4  # exactly one probe; it failed, so the breaker reopened
    assert {k.key: k for k in await app.keys()}["seller-1"].breaker is BreakerState.OPEN

    broken.clear()
    clock.advance(120)
    await drain(concurrency=10)
    clock.advance(120)
    await drain(concurrency=10)
    assert {k.key: k for k in await app.keys()}["seller-1"].breaker is BreakerState.CLOSED
    done = (await app.list_jobs(JobFilter(states=[JobState.COMPLETED]), limit=100)).jobs
    assert len(done) == 9
    assert (await app.stats()).count(JobState.FAILED) == 0


async def test_keys_can_be_paused_and_resumed_by_hand(app: Conveyor, drain: Drain) -> None:
    @app.job("amazon:export:products")
    async def export() -> None: ...

    await app.pause_key("amazon-eu")
    held = await export.options(key="amazon-eu").enqueue()
    free = await export.options(key="amazon-us").enqueue()
    await drain()
    assert (await app.get_job(held.id)).state is JobState.PENDING
    assert (await app.get_job(free.id)).state is JobState.COMPLETED
    assert [k.paused for k in await app.keys() if k.key == "amazon-eu"] == [True]
    await app.resume_key("amazon-eu")
    await drain()
    assert (await app.get_job(held.id)).state is JobState.COMPLETED


async def test_throttle_ignores_duplicates_for_a_ttl(app: Conveyor, clock: FakeClock, drain: Drain) -> None:
    @app.job("seller:refresh")
    async def refresh(user: str) -> None: ...

    throttled = refresh.options(dedup_key="user-1", dedup="throttle", dedup_ttl=60)
    first = await throttled.enqueue(user="1")
    await drain()
    clock.advance(30)
    again = await throttled.enqueue(user="1")
    assert again.id == first.id
    assert again.state is JobState.COMPLETED
    clock.advance(31)
    later = await throttled.enqueue(user="1")
    assert later.id != first.id


async def test_debounce_replaces_payload_and_restarts_the_delay(
    app: Conveyor, clock: FakeClock, drain: Drain
) -> None:
    seen: list[int] = []

    @app.job("catalog:reindex")
    async def reindex(version: int) -> None:
        seen.append(version)

    debounced = reindex.options(dedup_key="product-7", dedup="debounce", delay=10)
    first = await debounced.enqueue(version=1)
    clock.advance(8)
    second = await debounced.enqueue(version=2)
    assert second.id == first.id
    stored = await app.get_job(first.id)
    assert stored.payload == {"version": 2}
    assert stored.run_at == clock.now() + 10
    clock.advance(9)
    await drain()
    assert seen == []
    clock.advance(1)
    await drain()
    assert seen == [2]


async def test_a_handler_feeds_its_keys_limiter_from_response_headers(
    app: Conveyor, clock: FakeClock, drain: Drain
) -> None:
    @app.job("jumpseller:publish")
    async def publish(ctx: JobContext, n: int) -> None:
        # as if the response said: Jumpseller-PerMinuteRateLimit-Remaining: 0, window resets in 60 s
        await ctx.feed_limiter(remaining=0, reset_at=clock.now() + 60)

    first = await publish.options(key="store-9").enqueue(n=0)
    await drain(concurrency=1)
    second = await publish.options(key="store-9").enqueue(n=1)
    other = await publish.options(key="store-10").enqueue(n=2)
    await drain()
    assert (await app.get_job(first.id)).state is JobState.COMPLETED
    assert (await app.get_job(second.id)).state is JobState.PENDING
    assert (await app.get_job(other.id)).state is JobState.COMPLETED
    clock.advance(60)
    await drain()
    assert (await app.get_job(second.id)).state is JobState.COMPLETED


async def test_a_probe_whose_worker_died_frees_the_key(app: Conveyor, clock: FakeClock, drain: Drain) -> None:
    class AuthFailed(Exception):
        pass

    expired = [True]

    @app.job("seller:fetch", breaker=Breaker(on=(AuthFailed,), threshold=1, cooldown=10))
    async def fetch(n: int) -> None:
        if expired.pop() if expired else False:
            raise AuthFailed("token expired")

    await fetch.options(key="seller-9").enqueue(n=0)
    await drain()
    assert {k.key: k for k in await app.keys()}["seller-9"].breaker is BreakerState.OPEN
    await fetch.options(key="seller-9").enqueue(n=1)
    clock.advance(11)
    backend = await app.backend()
    now = clock.now()
    probe = await backend.fetch(FetchParams("ghost", {"default": 10}, now, now + app.settings.lease_seconds))
    assert len(probe) == 1  # the ghost takes the probe, then dies holding it
    clock.advance(app.settings.lease_seconds + 1)
    await drain()  # recovery frees the probe slot; a new probe runs and closes the breaker
    assert {k.key: k for k in await app.keys()}["seller-9"].breaker is BreakerState.CLOSED
    assert (await app.stats()).count(JobState.COMPLETED) == 2
