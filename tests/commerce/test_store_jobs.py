"""Store jobs (seed 001) end to end, on both engine backends, against the simulators over real HTTP.

One FakeClock drives the engine, the connectors and the simulators' limits;
workers run in burst mode while the test moves time, so the 5 s / 30 s /
5 min retry delays and rate-limit waits cost no wall time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from conveyor import Conveyor, FakeClock, Job, JobNotFound, JobState
from conveyor.commerce import db
from conveyor.commerce.catalog import Image, MarketplaceAccount, MarketplaceKind, Product, Store
from conveyor.commerce.store_jobs import (
    STORE_QUEUE,
    AISettings,
    AkeneoConnection,
    ImportedCategory,
    StoreJobs,
    UiLabel,
    register,
)
from conveyor.sandbox import (
    AmazonConfig,
    AmazonSandbox,
    EbaySandbox,
    FaultKind,
    RunningSandbox,
    ShopifySandbox,
    start,
)
from conveyor.sandbox.akeneo import AkeneoSandbox
from conveyor.sandbox.openai_compat import OpenAICompatSandbox
from conveyor.sandbox.shopify_catalog_read import collections_of

FINISHED = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)
SKUS = ["BLUE-WIDGET", "RED-WIDGET", "GREEN-WIDGET"]
EBAY_SETTINGS = {
    "category_id": "52365",
    "merchant_location_key": "default",
    "fulfillment_policy_id": "F1",
    "payment_policy_id": "P1",
    "return_policy_id": "R1",
}


@dataclass
class World:
    app: Conveyor
    jobs: StoreJobs
    clock: FakeClock
    sessions: sessionmaker[Session]
    openai: OpenAICompatSandbox
    amazon: AmazonSandbox
    ebay: EbaySandbox
    shopify: ShopifySandbox
    akeneo: AkeneoSandbox
    servers: dict[str, RunningSandbox]
    store_id: int
    accounts: dict[str, int]
    product_ids: list[int]

    def add_account(self, kind: MarketplaceKind, credentials_ref: str, settings: dict[str, Any]) -> int:
        with self.sessions.begin() as session:
            account = MarketplaceAccount(
                store_id=self.store_id,
                kind=kind,
                name=f"{kind}-{credentials_ref}",
                credentials_ref=credentials_ref,
                settings=settings,
            )
            session.add(account)
            session.flush()
            return account.id

    def count(self, model: Any, **where: Any) -> int:
        with self.sessions.begin() as session:
            query = select(func.count()).select_from(model).filter_by(store_id=self.store_id, **where)
            return int(session.scalar(query) or 0)

    async def run(self, name: str, limit: int = 400, **payload: Any) -> Job:
        """Enqueue through `StoreJobs.enqueue`, then work in bursts, 1 fake second apart, until it ends."""
        job = await self.jobs.enqueue(name, user_id=7, **payload)
        for _ in range(limit):
            await self.jobs.worker(burst=True).run()
            job = await self.app.get_job(job.id)
            if job.state in FINISHED:
                return job
            self.clock.advance(1)
        raise AssertionError(f"{name} still {job.state} after {limit} fake seconds")


@pytest.fixture
def world(
    backend_url: str, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    openai = OpenAICompatSandbox(clock=clock)
    amazon = AmazonSandbox(AmazonConfig(), clock=clock)
    ebay = EbaySandbox(clock=clock)
    shopify = ShopifySandbox(clock=clock)
    akeneo = AkeneoSandbox(clock=clock)
    sandboxes = {"openai": openai, "amazon": amazon, "ebay": ebay, "shopify": shopify, "akeneo": akeneo}
    servers = {name: start(sandbox) for name, sandbox in sandboxes.items()}
    a, k = amazon.config, akeneo.config
    secrets = {
        "TEST_OPENAI": {"api_key": openai.config.api_key},
        "TEST_AMAZON": {
            "client_id": a.client_id,
            "client_secret": a.client_secret,
            "refresh_token": a.refresh_token,
        },
        "TEST_AMAZON_WRONG": {
            "client_id": a.client_id,
            "client_secret": "stale",
            "refresh_token": a.refresh_token,
        },
        "TEST_EBAY": {"access_token": ebay.config.access_token},
        "TEST_SHOPIFY": {"access_token": shopify.config.access_token},
        "TEST_SHOPIFY_WRONG": {"access_token": "shpat_revoked"},
        "TEST_AKENEO": {
            "client_id": k.client_id,
            "secret": k.secret,
            "username": k.username,
            "password": k.password,
        },
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, json.dumps(value))
    catalog_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    db.migrate(catalog_url)
    sessions = db.session_factory(db.create_engine_for(catalog_url))
    store_id, product_ids = _store(sessions)
    app = Conveyor(backend_url, clock=clock)
    ai = AISettings(credentials_ref="env:TEST_OPENAI", base_url=servers["openai"].api_url)
    jobs = register(app, catalog_url=catalog_url, ai=ai, clock=clock, page_size=3, connector_timeout=10)
    world = World(
        app, jobs, clock, sessions, openai, amazon, ebay, shopify, akeneo, servers, store_id, {}, product_ids
    )
    world.accounts = {
        "amazon": world.add_account(MarketplaceKind.AMAZON, "env:TEST_AMAZON", _amazon_settings(world)),
        "ebay": world.add_account(
            MarketplaceKind.EBAY, "env:TEST_EBAY", {"base_url": servers["ebay"].api_url, **EBAY_SETTINGS}
        ),
        "shopify": world.add_account(
            MarketplaceKind.SHOPIFY, "env:TEST_SHOPIFY", {"shop_url": servers["shopify"].api_url}
        ),
    }
    with sessions.begin() as session:
        connection = AkeneoConnection(
            store_id=store_id, base_url=servers["akeneo"].api_url, credentials_ref="env:TEST_AKENEO"
        )
        session.add(connection)
        session.flush()
        world.accounts["akeneo"] = connection.id
    yield world
    app.close_sync()
    for server in servers.values():
        server.stop()


def _store(sessions: sessionmaker[Session]) -> tuple[int, list[int]]:
    with sessions.begin() as session:
        store = Store(name="shop")
        products = [
            Product(
                sku=sku,
                name=sku.replace("-", " ").title(),
                description="A sturdy widget.",
                price=Decimal("19.99") + n,
                stock=5,
                images=[Image(url=f"https://img.example/{sku}.jpg", position=1)],
            )
            for n, sku in enumerate(SKUS)
        ]
        store.products.extend(products)
        session.add(store)
        session.flush()
        return store.id, [p.id for p in products]


def failure(job: Job) -> str:
    """The message of the job's last failed attempt."""
    assert job.error is not None
    return job.error.message


def replies(sandbox: OpenAICompatSandbox) -> dict[str, str]:
    """The simulator's answer per user message (the first line of it: the product name or label)."""
    return {c.messages[-1][1].split("\n")[0]: c.reply for c in sandbox.completions}


async def test_job_types_priorities_retries_and_five_at_once(world: World) -> None:
    expected = {
        "translation:ui-labels:bulk": 3,
        "amazon:export:products": 3,
        "ebay:export:products": 3,
        "shopify:import:collections": 3,
        "shopify:import:products": 3,
        "shopify:import:all": 2,
        "akeneo:import:products": 3,
        "akeneo:import:categories": 3,
        "system:daily_credit_deduction": 1,
        "system:cleanup": 10,
    }
    assert {name: t.priority for name, t in world.jobs.types.items()} == expected
    assert {(t.queue, t.attempts) for t in world.jobs.types.values()} == {(STORE_QUEUE, 4)}
    assert world.jobs.worker().concurrency == {STORE_QUEUE: 5}
    await world.app.sync_schedules()
    schedules = {s.job_type: s.cron for s in await world.app.schedules()}
    assert schedules == {"system:daily_credit_deduction": "5 0 * * *", "system:cleanup": "30 3 * * *"}
    payload = {"store_id": world.store_id, "account_id": world.accounts["shopify"]}
    first = await world.jobs.enqueue("shopify:import:all", user_id=3, **payload)
    second = await world.jobs.enqueue("shopify:import:all", user_id=3, **payload)
    assert second.id == first.id  # a second click while the import is queued joins it
    first = await world.app.get_job(first.id)
    assert (first.tenant, first.user_id, first.key) == (
        f"store-{world.store_id}",
        "3",
        f"shopify:{payload['account_id']}",
    )
    assert (
        Conveyor(world.app.settings.url, concurrency={STORE_QUEUE: 2}).settings.concurrency_for(STORE_QUEUE)
        == 2
    )


async def test_amazon_export_buys_each_ai_title_once_across_retries(world: World) -> None:
    world.jobs.credits.grant(world.store_id, 10)
    world.openai.faults.force(FaultKind.THROTTLE)  # first AI call: 429, re-delayed without an attempt
    # Three 5xx on the first listing PUT: more than the connector repeats a request itself,
    # so the attempt fails and the engine retries it.
    world.amazon.faults.force(FaultKind.ERROR, FaultKind.ERROR, FaultKind.ERROR)
    job = await world.run(
        "amazon:export:products",
        store_id=world.store_id,
        account_id=world.accounts["amazon"],
        product_ids=world.product_ids,
    )
    assert job.state is JobState.COMPLETED, job.error
    assert job.attempts == 2  # the 5xx cost one attempt; the 429 none
    titles = replies(world.openai)
    names = [sku.replace("-", " ").title() for sku in SKUS]
    assert sorted(titles) == sorted(names)
    assert len(world.openai.completions) == 3  # the retry reused the titles it had paid for
    for sku, name in zip(SKUS, names, strict=True):
        assert world.amazon.store.items[sku]["attributes"]["item_name"][0]["value"] == titles[name]
    assert world.jobs.credits.balance(world.store_id) == 7
    debits = world.jobs.credits.debits(world.store_id)
    assert [(d.job_id, d.amount) for d in debits] == [(job.id, 1)] * 3
    assert job.result == {"exported": SKUS, "credits_spent": 3}
    assert job.progress.message == f"Exporting to Amazon: {titles[names[-1]]} (3/3)"
    assert job.user_id == "7"


async def test_ebay_export_publishes_with_and_without_ai(world: World) -> None:
    world.jobs.credits.grant(world.store_id, 3)
    account = world.accounts["ebay"]
    job = await world.run(
        "ebay:export:products", store_id=world.store_id, account_id=account, product_ids=world.product_ids
    )
    assert job.state is JobState.COMPLETED, job.error
    titles = replies(world.openai)
    assert {world.ebay.store.items[sku]["product"]["title"] for sku in SKUS} == set(titles.values())
    assert len(world.ebay.store.listings) == 3
    plain = await world.run(
        "ebay:export:products",
        store_id=world.store_id,
        account_id=account,
        product_ids=world.product_ids[:1],
        ai_optimize=False,
    )
    assert plain.state is JobState.COMPLETED, plain.error
    assert world.ebay.store.items[SKUS[0]]["product"]["title"] == "Blue Widget"
    assert world.jobs.credits.balance(world.store_id) == 0


async def test_failures_no_retry_can_fix_end_after_one_attempt(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    amazon = world.accounts["amazon"]
    world.jobs.credits.grant(world.store_id, 1)
    broke = await world.run(
        "amazon:export:products", store_id=world.store_id, account_id=amazon, product_ids=world.product_ids
    )
    assert (broke.state, broke.attempts) == (JobState.FAILED, 1)
    assert "Insufficient credits" in failure(broke)
    assert (
        world.jobs.credits.balance(world.store_id) == 0
    )  # the first title was bought, the second could not be
    assert world.amazon.store.items == {}

    wrong = world.add_account(MarketplaceKind.AMAZON, "env:TEST_AMAZON_WRONG", _amazon_settings(world))
    refused = await world.run(
        "amazon:export:products",
        store_id=world.store_id,
        account_id=wrong,
        product_ids=world.product_ids,
        ai_optimize=False,
    )
    assert (refused.state, refused.attempts) == (JobState.FAILED, 1)
    assert "Invalid credentials for Amazon account" in failure(refused)
    assert "Client authentication failed" in failure(refused)

    monkeypatch.setenv("TEST_OPENAI", json.dumps({"api_key": "sk-revoked"}))
    world.jobs.credits.grant(world.store_id, 1)
    no_ai = await world.run(
        "amazon:export:products", store_id=world.store_id, account_id=amazon, product_ids=world.product_ids
    )
    assert (no_ai.state, no_ai.attempts) == (JobState.FAILED, 1)
    assert "Invalid credentials for the AI provider: openai: API key refused" in failure(no_ai)
    assert "sk-re" not in failure(no_ai)
    assert world.jobs.credits.balance(world.store_id) == 1  # the refused call's credit came back
    assert [d.job_id for d in world.jobs.credits.debits(world.store_id)] == [broke.id]

    revoked = world.add_account(
        MarketplaceKind.SHOPIFY, "env:TEST_SHOPIFY_WRONG", {"shop_url": world.servers["shopify"].api_url}
    )
    shop = await world.run("shopify:import:products", store_id=world.store_id, account_id=revoked)
    assert (shop.state, shop.attempts) == (JobState.FAILED, 1)
    assert "Invalid credentials for Shopify account" in failure(shop)

    with world.sessions.begin() as session:
        session.add(
            Product(store_id=world.store_id, sku="FREE-WIDGET", name="Free", price=Decimal("0"), stock=1)
        )
        session.flush()
        free = session.scalars(select(Product.id).where(Product.sku == "FREE-WIDGET")).one()
    with world.sessions.begin() as session:
        session.add(
            Product(store_id=world.store_id, sku="NO-PICTURE", name="Bare", price=Decimal("5"), stock=1)
        )
        session.flush()
        bare = session.scalars(select(Product.id).where(Product.sku == "NO-PICTURE")).one()
    refused_by_ebay = await world.run(
        "ebay:export:products",
        store_id=world.store_id,
        account_id=world.accounts["ebay"],
        product_ids=[bare],
        ai_optimize=False,
    )
    assert (refused_by_ebay.state, refused_by_ebay.attempts) == (JobState.FAILED, 1)
    assert (
        "Product validation failed: NO-PICTURE: A user error has occurred. At least 1 picture is required."
        in failure(refused_by_ebay)
    )

    invalid = await world.run(
        "amazon:export:products",
        store_id=world.store_id,
        account_id=amazon,
        product_ids=[*world.product_ids, free],
    )
    assert (invalid.state, invalid.attempts) == (JobState.FAILED, 1)
    assert "Product validation failed: FREE-WIDGET: price must be greater than 0" in failure(invalid)


def _amazon_settings(world: World) -> dict[str, Any]:
    api = world.servers["amazon"].api_url
    return {
        "base_url": api,
        "token_url": f"{api}/auth/o2/token",
        "seller_id": world.amazon.config.seller_id,
        "marketplace_id": "ATVPDKIKX0DER",
    }


async def test_shopify_import_all_pages_through_collections_and_products(world: World) -> None:
    headers = {"X-Shopify-Access-Token": world.shopify.config.access_token}
    async with httpx.AsyncClient(
        base_url=f"{world.servers['shopify'].api_url}/admin/api/2026-04", headers=headers
    ) as http:
        for n in range(7):
            product: dict[str, Any] = {
                "title": f"Lamp {n}",
                "variants": [{"sku": f"LAMP-{n}", "price": f"{30 + n}.00"}],
            }
            if n == 0:
                product["options"] = [{"name": "Size", "values": ["S", "L"]}]
                product["variants"] = [
                    {"sku": "LAMP-0-S", "price": "30.00", "option1": "S"},
                    {"sku": "LAMP-0-L", "price": "35.00", "option1": "L"},
                ]
            assert (await http.post("/products.json", json={"product": product})).status_code == 201
    for title in ("Summer", "Winter", "Lamps", "Sale"):
        collections_of(world.shopify).add(title)
    world.shopify.faults.force(FaultKind.THROTTLE)  # the first list call: 429 + Retry-After 2.0
    before = world.shopify.counters.total
    job = await world.run("shopify:import:all", store_id=world.store_id, account_id=world.accounts["shopify"])
    assert job.state is JobState.COMPLETED, job.error
    assert job.attempts == 1
    assert job.result == {"collections": 4, "products": 7, "skipped": 0}
    assert job.progress.message == "Importing products: 7/7"
    pages = world.shopify.counters.by_endpoint
    assert pages["GET /admin/api/{version}/custom_collections.json"] == 2 + 1  # 2 pages + the throttled try
    assert pages["GET /admin/api/{version}/products.json"] == 3
    assert world.shopify.counters.total - before == 3 + 1 + 3  # + products/count.json
    assert world.count(ImportedCategory, source="shopify") == 4
    assert world.count(Product) == len(SKUS) + 7
    with world.sessions.begin() as session:
        lamp = session.scalars(select(Product).where(Product.sku == "lamp-0")).one()
        assert sorted((v.sku, v.options["Size"]) for v in lamp.variants) == [
            ("LAMP-0-L", "L"),
            ("LAMP-0-S", "S"),
        ]
        single = session.scalars(select(Product).where(Product.sku == "LAMP-6")).one()
        assert (single.name, single.price, single.variants) == ("Lamp 6", Decimal("36.00"), [])
    again = await world.run(
        "shopify:import:products", store_id=world.store_id, account_id=world.accounts["shopify"]
    )
    assert again.result == {"products": 7, "skipped": 0}
    assert world.count(Product) == len(SKUS) + 7  # upserted by SKU, not duplicated


async def test_akeneo_imports_every_page_and_bags_products_without_price(world: World) -> None:
    for n in range(10):
        world.akeneo.store.add_product(f"chair-{n:02d}", name=f"Chair {n}", price=f"{50 + n}.00")
    world.akeneo.store.products["chair-09"]["values"].pop("price")
    world.akeneo.store.add_category("master", "Master")
    for n in range(4):
        world.akeneo.store.add_category(f"room_{n}", f"Room {n}", parent="master")
    world.akeneo.faults.force(FaultKind.THROTTLE)  # 429 + Retry-After: 15 on the first product call
    connection = world.accounts["akeneo"]
    products = await world.run("akeneo:import:products", store_id=world.store_id, connection_id=connection)
    assert products.state is JobState.COMPLETED, products.error
    assert products.attempts == 1
    assert products.result == {"products": 9, "skipped": 1}
    assert products.progress.message == "Importing products: 10/10"
    assert (
        world.akeneo.counters.by_endpoint["GET /api/rest/v1/products"] == 1 + 1 + 4
    )  # throttled, count, 4 pages
    tracker = await world.app.tracker(products.id)
    assert [(e.kind, e.item, e.message) for e in tracker.bag] == [
        ("validation", "chair-09", "chair-09: no price")
    ]
    with world.sessions.begin() as session:
        chair = session.scalars(select(Product).where(Product.sku == "chair-03")).one()
        assert (chair.name, chair.price) == ("Chair 3", Decimal("53.00"))
    categories = await world.run(
        "akeneo:import:categories", store_id=world.store_id, connection_id=connection
    )
    assert categories.result == {"categories": 5}
    with world.sessions.begin() as session:
        rows = session.scalars(select(ImportedCategory).where(ImportedCategory.source == "akeneo")).all()
        assert sorted((c.code, c.parent_code) for c in rows) == [("master", None)] + [
            (f"room_{n}", "master") for n in range(4)
        ]


async def test_translation_daily_charge_and_cleanup(world: World) -> None:
    labels = {"cart.add": "Add to cart", "cart.empty": "Your cart is empty", "checkout": "Checkout"}
    with world.sessions.begin() as session:
        for key, value in labels.items():
            session.add(UiLabel(store_id=world.store_id, key=key, language="en", value=value))
        session.add(UiLabel(store_id=world.store_id, key="checkout", language="es", value="Pagar"))
    world.jobs.credits.grant(world.store_id, 10, daily_charge=4)
    job = await world.run("translation:ui-labels:bulk", store_id=world.store_id, target_language="es")
    assert job.state is JobState.COMPLETED, job.error
    assert job.result == {"translated": 2, "credits_spent": 2}
    assert job.progress.message == "Translating UI labels: 2/2"
    answers = replies(world.openai)
    with world.sessions.begin() as session:
        rows = session.execute(select(UiLabel.key, UiLabel.value).where(UiLabel.language == "es"))
        spanish = {key: value for key, value in rows}
    assert spanish == {
        "cart.add": answers["Add to cart"],
        "cart.empty": answers["Your cart is empty"],
        "checkout": "Pagar",
    }

    first = await world.run("system:daily_credit_deduction")
    twice = await world.run("system:daily_credit_deduction")
    assert first.result["charged"] == {str(world.store_id): 4}
    assert twice.result["charged"] == {}
    assert world.jobs.credits.balance(world.store_id) == 10 - 2 - 4
    world.clock.advance(86_400)
    tomorrow = await world.run("system:daily_credit_deduction")
    assert world.jobs.credits.balance(world.store_id) == 0  # 4 due, 4 left

    world.clock.advance(3600)
    cleanup = await world.run("system:cleanup", max_age=7200)
    assert cleanup.result == {"removed": 3}  # yesterday's jobs: the translation and two daily charges
    assert (await world.app.get_job(tomorrow.id)).state is JobState.COMPLETED
    for old in (job, first, twice):
        with pytest.raises(JobNotFound):
            await world.app.get_job(old.id)
