"""The world the campaign tests publish into, and the worker process they run.

The end-to-end and crash tests share it, and `python tests/commerce/campaign_world.py BACKEND_URL
CATALOG_URL` is the worker process they start, so jobs run beside the
simulators the way a deployment runs them, on their own core.

Time is real (SystemClock): a frozen FakeClock would keep every rate-limit
window closed for the whole burst. The simulators keep the real APIs' limit
semantics; only their sizes are scaled, here, so that 1,000 products fit in
well under a minute (see JUMPSELLER_WINDOWS and SHOPIFY_PLAN).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from conveyor import Conveyor, Job, JobState, TrackerNode
from conveyor.child import run_as_child
from conveyor.commerce import db
from conveyor.commerce.catalog import (
    Campaign,
    CampaignProduct,
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

JUMPSELLER_WINDOWS = {"per_second": 500, "per_minute": 30_000}
"""The real store allows 20/s and 800/min: 8 requests per product would take 10 minutes for 1,000
products. The windows keep their shape (fixed, both enforced, 429 when either is empty) at 12.5x
and 18.75x the size."""
SHOPIFY_PLAN = {"graphql_bucket": 20_000.0, "graphql_restore_rate": 2000.0}
"""Shopify Enterprise's restore rate (2,000 points/s; Standard is 100); every phase is one 10-point
`productSet`. The bucket size is an assumption (10 s of restore; the facts on file only give the
older 1,000-point bucket): with 1,000 points, 60 jobs in flight drain it within a second and the
run turns into a throttle storm that measures nothing but retries."""
FAULTS = FaultConfig(seed=7, error_rate=0.02, throttle_rate=0.02)
"""Per request, on both simulators: 5xx answers and 429s on top of the real limits."""
CONCURRENCY = 30
"""Jobs one worker process runs at once, per queue."""
REGISTER: dict[str, Any] = {
    "stagger": 0.02,
    "phase_backoff": (0.2, 0.5, 1.0),
    "phase_attempts": 12,
    "connector_timeout": 10.0,
    "shipment_lease": 30.0,
}
"""`register` arguments: the seed's 1 s stagger and minute-long back-offs scaled down."""
LEASE_SECONDS = 2.0
"""Job leases, short so that a killed worker's jobs come back within seconds."""
FINISHED = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)
INVALID_REASONS = ("price must be greater than 0", "stock must not be negative")


@dataclass
class World:
    app: Conveyor
    jobs: CampaignJobs
    sessions: sessionmaker[Session]
    backend_url: str
    catalog_url: str
    jumpseller: JumpsellerSandbox
    shopify: ShopifySandbox
    campaign_id: int
    valid: list[str]
    invalid: dict[str, str]
    """SKU -> the reason the pipeline must give."""


def build_world(
    tmp_path: Path, backend_url: str, monkeypatch: pytest.MonkeyPatch, products: int, invalid: int
) -> Iterator[World]:
    jumpseller = JumpsellerSandbox(JumpsellerConfig(faults=FAULTS, **JUMPSELLER_WINDOWS))
    shopify = ShopifySandbox(ShopifyConfig(faults=FAULTS, **SHOPIFY_PLAN))
    servers = [start(jumpseller), start(shopify)]
    creds = {"login": jumpseller.config.login, "authtoken": jumpseller.config.authtoken}
    monkeypatch.setenv("TEST_JUMPSELLER", json.dumps(creds))
    monkeypatch.setenv("TEST_SHOPIFY", json.dumps({"access_token": shopify.config.access_token}))
    catalog_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    db.migrate(catalog_url)
    sessions = db.session_factory(db.create_engine_for(catalog_url))
    campaign_id, valid, bad = _catalog(sessions, servers, products, invalid)
    app = Conveyor(backend_url, lease_seconds=LEASE_SECONDS)
    jobs = register(app, catalog_url=catalog_url, **REGISTER)
    yield World(app, jobs, sessions, backend_url, catalog_url, jumpseller, shopify, campaign_id, valid, bad)
    app.close_sync()
    for server in servers:
        server.stop()


def _catalog(
    sessions: sessionmaker[Session], servers: list[RunningSandbox], count: int, invalid: int
) -> tuple[int, list[str], dict[str, str]]:
    """`count` ready products with 2 variants and 2 images each, `invalid` of them unpublishable."""
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
        bad: dict[str, str] = {}
        products = []
        for n in range(count):
            sku = f"SKU-{n:04d}"
            price, stock = Decimal("10.00") + n, 5
            if n % (count // invalid) == 0 and len(bad) < invalid:
                reason = INVALID_REASONS[len(bad) % 2]
                price, stock = (Decimal("0"), stock) if reason.startswith("price") else (price, -1)
                bad[sku] = reason
            products.append(_product(sku, price, stock))
        store.products.extend(products)
        campaign = Campaign(name="spring")
        store.campaigns.append(campaign)
        session.add(store)
        session.flush()
        for product in products:
            for account in accounts:
                campaign.items.append(CampaignProduct(product_id=product.id, account_id=account.id))
        session.flush()
        return campaign.id, [p.sku for p in products if p.sku not in bad], bad


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


Spawn = Callable[[], "subprocess.Popen[bytes]"]


def worker_processes(world: World) -> Iterator[Spawn]:
    """Start worker processes on the world's stores; whatever still runs at the end is killed."""
    procs: list[subprocess.Popen[bytes]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}

    def spawn() -> subprocess.Popen[bytes]:
        args = [sys.executable, __file__, world.backend_url, world.catalog_url]
        procs.append(subprocess.Popen(args, env=env, stderr=subprocess.DEVNULL))
        return procs[-1]

    yield spawn
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


async def run_campaign(world: World, timeout: float = 60.0) -> Job:
    job = await world.jobs.process.enqueue(campaign_id=world.campaign_id)
    return await wait_finished(world, job.id, timeout)


async def wait_finished(world: World, job_id: str, timeout: float) -> Job:
    deadline = time.monotonic() + timeout
    while (job := await world.app.get_job(job_id)).state not in FINISHED:
        if time.monotonic() > deadline:
            held = (len(world.jumpseller.store.products), len(world.shopify.store.products))
            pytest.fail(f"campaign job still {job.state} after {timeout:g}s; products (js, shopify): {held}")
        await asyncio.sleep(0.2)
    return job


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


async def _work(backend_url: str, catalog_url: str) -> None:
    app = Conveyor(backend_url, lease_seconds=LEASE_SECONDS)
    register(app, catalog_url=catalog_url, **REGISTER)
    try:
        await run_as_child(app.worker(concurrency=CONCURRENCY))
    finally:
        await app.close()


if __name__ == "__main__":
    asyncio.run(_work(sys.argv[1], sys.argv[2]))
