"""Campaign publishing end to end: 1,000 products to the Jumpseller and Shopify simulators.

A worker process runs the jobs (campaign_world.py) on SQLite or Redis,
the simulators inject 5xx and 429s on top of their real rate limits, and the
test checks the simulators' state against the catalog, the tracker and the
ledger: once per valid product, never twice, and again only for edits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from campaign_world import (
    CONCURRENCY,
    Spawn,
    World,
    bag,
    build_world,
    expected,
    jumpseller_state,
    run_campaign,
    shopify_state,
    worker_processes,
)
from sqlalchemy import select

from conveyor import JobFilter, JobState
from conveyor.commerce.catalog import Campaign, CampaignStatus, MarketplaceAccount, MarketplaceKind, Product

pytestmark = pytest.mark.slow

PRODUCTS = 1000
INVALID = 20
WORKERS = 2
RUN_SECONDS = 120.0


@pytest.fixture
def world(tmp_path: Path, backend_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from build_world(tmp_path, backend_url, monkeypatch, PRODUCTS, INVALID)


@pytest.fixture
def spawn(world: World) -> Iterator[Spawn]:
    yield from worker_processes(world)


def slack(sandbox_violations: int, limit_reached: int) -> bool:
    """The limiter's documented slack: each time a limit is reached, every job of the account that
    is running in a worker may already have one request on the wire (the pacer holds the next one)."""
    return sandbox_violations <= WORKERS * CONCURRENCY * limit_reached


async def test_a_campaign_of_1000_products_publishes_each_valid_one_once(world: World, spawn: Spawn) -> None:
    for _ in range(WORKERS):
        spawn()
    job = await run_campaign(world, RUN_SECONDS)

    # Faults were really injected, on both marketplaces, and survived.
    for sandbox in (world.jumpseller, world.shopify):
        assert sandbox.counters.faults["error"] > 0
        assert sandbox.counters.faults["throttle"] > 0

    # Every valid product exists exactly once in each simulator, with its variants and images.
    jumpseller = {sku: jumpseller_state(world.jumpseller, sku) for sku in world.valid}
    shopify = {sku: shopify_state(world.shopify, sku) for sku in world.valid}
    for sku in world.valid:
        assert jumpseller[sku][1:] == expected(sku)
        assert shopify[sku][1:] == expected(sku)
    assert len(world.jumpseller.store.products) == len(world.valid) == PRODUCTS - INVALID
    assert len(world.shopify.store.products) == len(world.valid)
    assert set(world.jumpseller.store.created.values()) == {1}
    assert set(world.shopify.store.created.values()) == {1}

    # No request went past a real limit by more than the limiter's slack.
    assert slack(world.jumpseller.counters.violations, world.jumpseller.windows_exhausted)
    assert slack(world.shopify.counters.violations, world.shopify.graphql_bucket.ran_short)

    # The invalid ones are in the error bag, once per account, with the reason.
    tracker = await world.app.tracker(job.id)
    reasons = [entry for entry in bag(tracker) if entry[0] == "validation"]
    assert reasons == sorted(("validation", sku, why) for sku, why in world.invalid.items() for _ in range(2))

    # The tracker's counts match the simulators: every phase done for each published product.
    published = len(world.jumpseller.store.products) + len(world.shopify.store.products)
    for phase in tracker.phases:
        assert (phase.name, phase.done, phase.failed) == (phase.name, published, 0)
    assert job.result["status"] == "partially_published"
    assert job.result["published"] == published
    with world.sessions.begin() as session:
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        assert (campaign.status, campaign.products_published) == (
            CampaignStatus.PARTIALLY_PUBLISHED,
            published,
        )
        assert (campaign.products_total, campaign.products_failed) == (2 * PRODUCTS, 2 * INVALID)

    # Rerunning publishes nothing new: the ledger has every version delivered.
    writes = (dict(world.jumpseller.store.writes), dict(world.shopify.store.writes))
    again = await run_campaign(world, RUN_SECONDS)
    assert again.result["published"] == 0
    assert (world.jumpseller.store.writes, world.shopify.store.writes) == writes

    # Editing 3 products republishes exactly those 3, in place.
    edited = world.valid[10:13]
    with world.sessions.begin() as session:
        for product in session.scalars(select(Product).where(Product.sku.in_(edited))):
            product.name += " (new)"
    third = await run_campaign(world, RUN_SECONDS)
    assert third.result["published"] == 2 * len(edited)
    for sandbox, before, state in (
        (world.jumpseller, writes[0], jumpseller),
        (world.shopify, writes[1], shopify),
    ):
        changed = {pid for pid, count in sandbox.store.writes.items() if before.get(pid) != count}
        assert changed == {state[sku][0] for sku in edited}
        assert len(sandbox.store.products) == len(world.valid)
    assert {p["name"] for p in world.jumpseller.store.products.values() if p["sku"] in edited} == {
        f"Product {sku} (new)" for sku in edited
    }
    assert jumpseller_state(world.jumpseller, edited[0]) == jumpseller[edited[0]]
    assert shopify_state(world.shopify, edited[0]) == shopify[edited[0]]


@pytest.fixture
def small_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from build_world(tmp_path, f"sqlite:///{tmp_path / 'jobs.db'}", monkeypatch, 20, 2)


async def test_products_a_marketplace_refuses_count_as_failed_not_done(small_world: World) -> None:
    world = small_world
    refused = world.valid[3]
    with world.sessions.begin() as session:
        product = session.scalars(select(Product).where(Product.sku == refused)).one()
        product.name = ""  # passes the pipeline's checks; both marketplaces require a name
    for spawn in worker_processes(world):
        spawn()
        job = await run_campaign(world, RUN_SECONDS)

    tracker = await world.app.tracker(job.id)
    rejected = {(entry[0], entry[1]) for entry in bag(tracker) if entry[0] == "rejected"}
    assert rejected == {("rejected", refused)}
    assert sum(entry[1] == refused for entry in bag(tracker) if entry[0] == "rejected") == 2
    placed = len(world.valid) - 1
    counts = {phase.name: (phase.done, phase.failed) for phase in tracker.phases}
    assert counts == {"product_data": (2 * placed, 2), "variants": (2 * placed, 0), "images": (2 * placed, 0)}
    assert len(world.jumpseller.store.products) == len(world.shopify.store.products) == placed
    assert job.result["published"] == 2 * placed
    with world.sessions.begin() as session:
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        assert (campaign.products_published, campaign.products_failed) == (2 * placed, 2 * 2 + 2)


async def test_refused_credentials_fail_the_phase_jobs_at_once_with_the_api_message(
    small_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = small_world
    wrong = {"login": world.jumpseller.config.login, "authtoken": "not-the-token"}
    monkeypatch.setenv("TEST_JUMPSELLER", json.dumps(wrong))
    for spawn in worker_processes(world):
        spawn()
        job = await run_campaign(world, RUN_SECONDS)

    page = await world.app.list_jobs(JobFilter(types=["publish:product_data"]), limit=100)
    refused = [j for j in page.jobs if j.payload["account_id"] == _jumpseller_account(world)]
    assert len(refused) == 4  # 20 products in chunks of 5
    assert all(j.state is JobState.FAILED for j in refused)
    assert {(j.attempts, j.error.type, j.error.message) for j in refused if j.error} == {
        (1, "CredentialsRejected", "Invalid login or authtoken")
    }
    # One request per chunk: the first 401 ends the job, no product is tried after it.
    assert world.jumpseller.counters.by_status[401] == len(refused)
    assert world.jumpseller.store.products == {}
    assert len(world.shopify.store.products) == len(world.valid)
    tracker = await world.app.tracker(job.id)
    counts = {phase.name: (phase.done, phase.failed) for phase in tracker.phases}
    assert counts["product_data"] == (len(world.valid), len(world.valid))
    assert job.result["status"] == "partially_published"


def _jumpseller_account(world: World) -> int:
    with world.sessions.begin() as session:
        return session.scalars(
            select(MarketplaceAccount.id).where(MarketplaceAccount.kind == MarketplaceKind.JUMPSELLER)
        ).one()
