"""Campaign publishing end to end: engine flows against the Jumpseller and Shopify simulators.

Everything shares one FakeClock (engine, ledger, connectors, simulators'
rate limits), and the workers run in-process in burst mode while the test
moves time, so rate-limit waits and back-offs cost no wall time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from conveyor import Conveyor, FakeClock, Job, JobState, TrackerNode
from conveyor.commerce import db
from conveyor.commerce.catalog import (
    Campaign,
    CampaignProduct,
    CampaignStatus,
    Image,
    MarketplaceAccount,
    MarketplaceKind,
    Product,
    Store,
    Variant,
)
from conveyor.commerce.pipelines import CampaignJobs, register
from conveyor.sandbox import (
    FaultConfig,
    JumpsellerConfig,
    JumpsellerSandbox,
    RunningSandbox,
    ShopifyConfig,
    ShopifySandbox,
    start,
)

PRODUCTS = 40
INVALID = {"BAD-PRICE": "price must be greater than 0", "BAD-STOCK": "stock must not be negative"}
# Per request, on both simulators: 5xx answers and 429s on top of the real rate limits.
FAULTS = FaultConfig(seed=7, error_rate=0.02, throttle_rate=0.02)
FINISHED = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


@dataclass
class World:
    app: Conveyor
    jobs: CampaignJobs
    clock: FakeClock
    sessions: sessionmaker[Session]
    jumpseller: JumpsellerSandbox
    shopify: ShopifySandbox
    campaign_id: int
    valid: list[str]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    clock = FakeClock()
    # The fake clock stands still during a burst, so the real 20/s window would turn most
    # requests into 429s; wide windows leave the injected 429s and 5xx to test the retries.
    jumpseller = JumpsellerSandbox(
        JumpsellerConfig(faults=FAULTS, per_second=10_000, per_minute=100_000), clock=clock
    )
    shopify = ShopifySandbox(ShopifyConfig(faults=FAULTS), clock=clock)
    servers: list[RunningSandbox] = [start(jumpseller), start(shopify)]
    creds = {"login": jumpseller.config.login, "authtoken": jumpseller.config.authtoken}
    monkeypatch.setenv("TEST_JUMPSELLER", json.dumps(creds))
    monkeypatch.setenv("TEST_SHOPIFY", json.dumps({"access_token": shopify.config.access_token}))
    catalog_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    db.migrate(catalog_url)
    sessions = db.session_factory(db.create_engine_for(catalog_url))
    campaign_id, valid = _catalog(sessions, servers)
    app = Conveyor(f"sqlite:///{tmp_path / 'jobs.db'}", clock=clock)
    jobs = register(
        app,
        catalog_url=catalog_url,
        clock=clock,
        phase_backoff=(1, 2, 5),
        phase_attempts=12,
        connector_timeout=10,
    )
    yield World(app, jobs, clock, sessions, jumpseller, shopify, campaign_id, valid)
    app.close_sync()
    for server in servers:
        server.stop()


def _catalog(sessions: sessionmaker[Session], servers: list[RunningSandbox]) -> tuple[int, list[str]]:
    """PRODUCTS ready products with 2 variants and 2 images each, 2 of them invalid, in one campaign."""
    with sessions.begin() as session:
        store = Store(name="shop")
        accounts = [
            MarketplaceAccount(
                kind=MarketplaceKind.JUMPSELLER,
                name="js",
                credentials_ref="env:TEST_JUMPSELLER",
                settings={"base_url": servers[0].api_url},
            ),
            MarketplaceAccount(
                kind=MarketplaceKind.SHOPIFY,
                name="shop",
                credentials_ref="env:TEST_SHOPIFY",
                settings={"shop_url": servers[1].api_url},
            ),
        ]
        store.accounts.extend(accounts)
        products = []
        for n in range(PRODUCTS - len(INVALID)):
            sku = f"SKU-{n:04d}"
            products.append(_product(sku, Decimal("10.00") + n, 5))
        products.append(_product("BAD-PRICE", Decimal("0"), 5))
        products.append(_product("BAD-STOCK", Decimal("9.99"), -1))
        store.products.extend(products)
        campaign = Campaign(name="spring")
        store.campaigns.append(campaign)
        session.add(store)
        session.flush()
        for product in products:
            for account in accounts:
                campaign.items.append(CampaignProduct(product_id=product.id, account_id=account.id))
        session.flush()
        valid = [p.sku for p in products if p.sku not in INVALID]
        return campaign.id, valid


def _product(sku: str, price: Decimal, stock: int) -> Product:
    return Product(
        sku=sku,
        name=f"Product {sku}",
        price=price,
        stock=stock,
        ready=True,
        variants=[
            Variant(sku=f"{sku}-S", price=None, stock=2, options={"Size": "S"}),
            Variant(sku=f"{sku}-M", price=price + 1, stock=3, options={"Size": "M"}),
        ],
        images=[Image(url=f"https://img.example/{sku}/{n}.jpg", position=n) for n in (1, 2)],
    )


async def run_campaign(world: World, limit: int = 5000) -> Job:
    """Work in bursts, moving the clock 1 s between them, until the campaign job has finished."""
    job = await world.jobs.process.enqueue(campaign_id=world.campaign_id)
    for _ in range(limit):
        await world.app.worker(burst=True, concurrency=20).run()
        job = await world.app.get_job(job.id)
        if job.state in FINISHED:
            return job
        world.clock.advance(1)
    raise AssertionError(f"campaign job still {job.state} after {limit} fake seconds")


def bag(node: TrackerNode) -> list[tuple[str, str, str]]:
    entries = [(e.kind, e.item, e.message) for e in node.bag]
    for child in node.children:
        entries += bag(child)
    return sorted(entries)


def jumpseller_state(sandbox: JumpsellerSandbox, sku: str) -> tuple[int, list[str], list[str]]:
    (product,) = sandbox.store.with_sku(sku)
    variants = sorted(v["sku"] for v in product["variants"])
    return product["id"], variants, sorted(i["url"] for i in product["images"])


def shopify_state(sandbox: ShopifySandbox, sku: str) -> tuple[int, list[str], list[str]]:
    (product,) = sandbox.store.with_sku(f"{sku}-S")
    variants = sorted(v["sku"] for v in product["variants"])
    return product["id"], variants, sorted(i["src"] for i in product["images"])


def expected(sku: str) -> tuple[list[str], list[str]]:
    return [f"{sku}-M", f"{sku}-S"], [f"https://img.example/{sku}/{n}.jpg" for n in (1, 2)]


async def test_campaign_publishes_each_valid_product_once_and_only_edits_again(world: World) -> None:
    job = await run_campaign(world)

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
    assert len(world.jumpseller.store.products) == len(world.valid)
    assert len(world.shopify.store.products) == len(world.valid)

    # The invalid ones are in the error bag, once per account, with the reason.
    tracker = await world.app.tracker(job.id)
    reasons = [(kind, item, message) for kind, item, message in bag(tracker) if kind == "validation"]
    assert reasons == sorted(("validation", sku, why) for sku, why in INVALID.items() for _ in range(2))

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
        assert (campaign.products_total, campaign.products_failed) == (2 * PRODUCTS, 2 * len(INVALID))

    # Rerunning publishes nothing new: the ledger has every version delivered.
    writes = (dict(world.jumpseller.store.writes), dict(world.shopify.store.writes))
    again = await run_campaign(world)
    assert again.result["published"] == 0
    assert (world.jumpseller.store.writes, world.shopify.store.writes) == writes

    # Editing 3 products republishes exactly those 3, in place.
    edited = world.valid[10:13]
    with world.sessions.begin() as session:
        for product in session.scalars(select(Product).where(Product.sku.in_(edited))):
            product.name += " (new)"
    third = await run_campaign(world)
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
