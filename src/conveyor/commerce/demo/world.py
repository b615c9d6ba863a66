"""What `conveyor demo` runs: the simulators, a seeded catalog, and the jobs it starts and watches.

The demo process owns the simulators; worker processes reach them over HTTP
like any outside API, through URLs stored in the catalog or handed down in
the environment with the credentials.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from conveyor import Job, TrackerNode
from conveyor.sandbox.lwa import TOKEN_PATH

from ..tenancy import store_tenant
from . import services as config
from .catalog_seed import SeededCatalog, seed_catalog, seed_sellers
from .services import DemoServices
from .simulators import CREDENTIALS, Simulators

Describe = Callable[[Job, TrackerNode | None, Sequence[Job]], str]
SELLERS = 6


@dataclass(frozen=True)
class Launch:
    """One job the demo starts and watches; `describe` turns how it ended into the summary's words."""

    label: str
    start: Callable[[DemoServices], Awaitable[str]]
    describe: Describe
    follows: str | None = None
    """A job type the launched job enqueues outside its flow (a tick's per-user jobs), watched with it."""


class DemoWorld:
    """Start the simulators and seed the catalog on enter; stop the simulators on exit."""

    def __init__(self, directory: Path, *, products: int, families: int) -> None:
        self.directory = directory
        self.products = products
        self.simulators = Simulators(families=families)
        self.catalog_url = f"sqlite:///{directory / 'catalog.db'}"
        self.seeded: SeededCatalog | None = None

    def __enter__(self) -> DemoWorld:
        self.simulators.__enter__()
        try:
            urls = {name: self.simulators.url(name) for name in self.simulators.running}
            self.seeded = seed_catalog(
                self.catalog_url, products=self.products, urls=urls, credentials=CREDENTIALS
            )
            secrets = self.directory / "seller-credentials.json"
            seed_sellers(self.catalog_url, users=SELLERS, lwa=self.simulators.lwa, secrets_file=secrets)
        except BaseException:
            self.simulators.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.simulators.stop()

    @property
    def env(self) -> dict[str, str]:
        """What the worker and API processes need to register the pipelines (credentials are exported)."""
        sellers = self.simulators.seller_api_urls
        return {
            config.CATALOG_URL: self.catalog_url,
            config.FEED_URL: self.simulators.url("promidata"),
            config.MEDIA_DIR: str(self.directory / "supplier-media"),
            config.OPENAI_URL: self.simulators.url("openai"),
            config.SELLER_API_URLS: json.dumps(sellers),
            config.LWA_URL: sellers["NA"] + TOKEN_PATH,
        }

    @property
    def urls(self) -> dict[str, str]:
        return {name: server.base_url for name, server in self.simulators.running.items()}

    def launches(self, services: DemoServices) -> list[Launch]:
        """The jobs to start, in order; the supplier is added here, through the service that syncs it."""
        seeded = self.seeded
        assert seeded is not None, "enter the world first"
        supplier = services.suppliers.add_supplier(
            store_id=seeded.northwind, code="A23", name="Promidata A23"
        )
        services.store_jobs.credits.grant(seeded.acme, 500, daily_charge=25)
        self.simulators.force_demo_failures()
        acme, northwind, accounts = seeded.acme, seeded.northwind, seeded.accounts

        def store(label: str, describe: Describe, name: str, **payload: Any) -> Launch:
            async def go(s: DemoServices) -> str:
                return (await s.store_jobs.enqueue(name, user_id=1, **payload)).id

            return Launch(f"{name} ({label})", go, describe)

        async def campaign(s: DemoServices) -> str:
            job = s.campaigns.process.options(tenant=store_tenant(acme), user_id="1")  # the store owner's
            return (await job.enqueue(campaign_id=seeded.campaign_id)).id

        async def seller_round(s: DemoServices) -> str:
            return (await s.seller_data.enqueue_due_users.enqueue()).id

        async def supplier_sync(s: DemoServices) -> str:
            queued = await s.suppliers.start_sync(supplier)
            assert queued.mode == "queued"
            return queued.jobs[0].jobId

        exports = seeded.export_products
        sellers = f"seller data: {SELLERS} sellers in NA, EU, FE"
        return [
            Launch(f"campaign: {self.products} products → Jumpseller, Shopify", campaign, _campaign),
            Launch("supplier sync: Promidata A23", supplier_sync, _supplier),
            Launch(sellers, seller_round, _sellers, follows="seller_data:process_user_data"),
            store(
                "Northwind",
                _imported,
                "shopify:import:all",
                store_id=northwind,
                account_id=accounts["shopify-source"],
            ),
            store(
                "Northwind",
                _imported,
                "akeneo:import:products",
                store_id=northwind,
                connection_id=seeded.akeneo_connection,
            ),
            store(
                "Acme",
                _exported,
                "amazon:export:products",
                store_id=acme,
                account_id=accounts["amazon"],
                product_ids=exports,
            ),
            store(
                "Acme",
                _exported,
                "ebay:export:products",
                store_id=acme,
                account_id=accounts["ebay"],
                product_ids=exports,
            ),
            store(
                "Acme, German", _translated, "translation:ui-labels:bulk", store_id=acme, target_language="de"
            ),
            store(
                "Blue Harbor, no credits",
                _exported,
                "amazon:export:products",
                store_id=seeded.harbor,
                account_id=accounts["harbor-amazon"],
                product_ids=seeded.harbor_products,
            ),
        ]


def _campaign(job: Job, tracker: TrackerNode | None, followed: Sequence[Job]) -> str:
    result = job.result if isinstance(job.result, dict) else {}
    if not result:
        return _failure(job)
    errors = ", ".join(f"{n} {kind}" for kind, n in sorted(result.get("errors", {}).items()))
    text = f"{result.get('status')}: {result.get('published')} of {result.get('total')} listings published"
    return f"{text}; errors: {errors}" if errors else text


def _supplier(job: Job, tracker: TrackerNode | None, followed: Sequence[Job]) -> str:
    result = job.result if isinstance(job.result, dict) else {}
    if not result:
        return _failure(job)
    pictures = _count(tracker, "suppliers:image") if tracker is not None else 0
    return (
        f"{result.get('products_processed')} of {result.get('families')} families written,"
        f" {pictures} pictures stored, {result.get('skipped')} unchanged, {result.get('errors')} errors"
    )


def _sellers(job: Job, tracker: TrackerNode | None, followed: Sequence[Job]) -> str:
    done = [j for j in followed if j.state.value == "completed"]
    accounts = sum(int(j.result.get("accounts_processed", 0)) for j in done if isinstance(j.result, dict))
    text = f"{len(done)} of {len(followed)} sellers updated, {accounts} accounts read"
    failed = len(followed) - len(done)
    return f"{text}, {failed} failed" if failed else text


def _imported(job: Job, tracker: TrackerNode | None, followed: Sequence[Job]) -> str:
    result = job.result if isinstance(job.result, dict) else {}
    if not result:
        return _failure(job)
    counts = ", ".join(f"{result[k]} {k}" for k in ("collections", "categories", "products") if k in result)
    return f"imported {counts}; {result.get('skipped', 0)} skipped"


def _exported(job: Job, tracker: TrackerNode | None, followed: Sequence[Job]) -> str:
    result = job.result if isinstance(job.result, dict) else {}
    if not result:
        return _failure(job)
    exported = result.get("exported", [])
    text = f"{len(exported)} listings exported, {result.get('credits_spent', 0)} AI credits spent"
    if job.attempts > 1 and job.error is not None:
        return f"{text}; attempt 1 failed: {job.error.message}"
    return text


def _translated(job: Job, tracker: TrackerNode | None, followed: Sequence[Job]) -> str:
    result = job.result if isinstance(job.result, dict) else {}
    if not result:
        return _failure(job)
    return f"{result.get('translated')} labels translated, {result.get('credits_spent', 0)} AI credits spent"


def _failure(job: Job) -> str:
    return job.error.message if job.error is not None else job.progress.message or ""


def _count(node: TrackerNode, job_type: str) -> int:
    """Completed jobs of `job_type` in the tree under `node`."""
    own = int(node.job.type == job_type and node.job.state.value == "completed")
    return own + sum(_count(child, job_type) for child in node.children)
