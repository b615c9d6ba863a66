"""Declaring the store job types (seed 001) on an app.

Every store job runs on the `store` queue, at most `STORE_CONCURRENCY` (5)
at a time per worker unless `CONVEYOR_CONCURRENCY_STORE` (or the app's
`concurrency={"store": n}`) says otherwise; `StoreJobs.worker` applies that
default. Priorities follow the seed's four levels (1 urgent billing, 2 full
catalog imports, 3 normal exports/imports/translations, 10 cleanup) and
every type retries after 5 s, 30 s and 5 min (4 attempts in all); failures
that no retry can cure (`Unrecoverable`: no credits, refused credentials,
invalid products) end the job at the first attempt, and rate limits re-delay
it without spending one.

Payloads carry ids only: the store and the account or connection to use;
secrets are resolved from credential references where the job runs.
`StoreJobs.enqueue` adds the options around them: the store as tenant, the
user who started the job (for per-user status views), the account's
rate-limit key, and a dedup key so a second import of the same source
returns the running one instead of starting a duplicate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from conveyor import (
    PRIORITY_HIGH,
    PRIORITY_LOW,
    PRIORITY_NORMAL,
    PRIORITY_URGENT,
    Clock,
    Conveyor,
    Job,
    JobContext,
    JobType,
    SystemClock,
    TenantGuard,
    Unrecoverable,
    Worker,
)
from conveyor.commerce.catalog import MarketplaceKind
from conveyor.commerce.db import create_engine_for, session_factory
from conveyor.commerce.tenancy import Owned, Ownership, store_tenant

from . import system
from .credits import CreditLedger
from .exports import Exporter
from .imports import Importer
from .providers import AISettings
from .translation import Translator

STORE_QUEUE = "store"
STORE_CONCURRENCY = 5
"""Store jobs one worker runs at once by default (seed 001)."""
RETRY_DELAYS = (5.0, 30.0, 300.0)
ATTEMPTS = len(RETRY_DELAYS) + 1
DAY = 86_400.0
_KEYS: dict[str, tuple[str, str | None]] = {
    "translation:ui-labels:bulk": ("ai", None),
    "amazon:export:products": ("amazon", "account_id"),
    "ebay:export:products": ("ebay", "account_id"),
    "shopify:import:collections": ("shopify", "account_id"),
    "shopify:import:products": ("shopify", "account_id"),
    "shopify:import:all": ("shopify", "account_id"),
    "akeneo:import:products": ("akeneo", "connection_id"),
    "akeneo:import:categories": ("akeneo", "connection_id"),
}
"""Job type -> (system, payload id field): the rate-limit key (`<system>:<id>`) pacing the job's calls.

The AI provider's limits belong to the one API key all stores share, so its key has no id."""
_DEDUPED = frozenset(name for name in _KEYS if ":import:" in name) | {"translation:ui-labels:bulk"}


@dataclass(frozen=True)
class StoreJobs:
    """The declared job types, by their seed names."""

    app: Conveyor
    types: dict[str, JobType[Any, Any]]
    credits: CreditLedger

    async def enqueue(self, name: str, *, user_id: int | None = None, **payload: Any) -> Job:
        """Enqueue a store job with its tenant, user, rate-limit key and (for imports) dedup key."""
        options: dict[str, Any] = {}
        if "store_id" in payload:
            options["tenant"] = store_tenant(payload["store_id"])
        if user_id is not None:
            options["user_id"] = str(user_id)
        if name in _KEYS:
            system_name, id_field = _KEYS[name]
            options["key"] = f"{system_name}:{payload.get(id_field)}" if id_field else system_name
        if name in _DEDUPED:
            fields = ("store_id", "account_id", "connection_id", "target_language")
            options["dedup_key"] = ":".join([name, *(str(payload.get(f, "")) for f in fields)])
        return await self.types[name].options(**options).enqueue(**payload)

    def worker(self, **options: Any) -> Worker:
        """A worker for the store queue, 5 jobs at once unless the app's settings name another number."""
        configured = self.app.settings.concurrency.get(STORE_QUEUE)
        options.setdefault("queues", [STORE_QUEUE])
        options.setdefault("concurrency", {STORE_QUEUE: configured or STORE_CONCURRENCY})
        return self.app.worker(**options)


def _ids(**ids: int) -> None:
    """Payload ids must be positive integers; a wrong one is a caller's bug no retry can fix."""
    for name, value in ids.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise Unrecoverable(f"{name} must be a positive integer id, got {value!r}")


def register(
    app: Conveyor,
    *,
    catalog_url: str,
    ai: AISettings | None = None,
    clock: Clock | None = None,
    connector_timeout: float = 30.0,
    page_size: int = 100,
    credits_per_title: int = 1,
    credits_per_label: int = 1,
    daily_credit_cron: str | None = "5 0 * * *",
    cleanup_cron: str | None = "30 3 * * *",
    cleanup_max_age: float = 30 * DAY,
) -> StoreJobs:
    """Declare the store job types on `app`, working on the catalog at `catalog_url`.

    `ai` is the OpenAI-compatible provider for translations and title
    optimisation (jobs that need it fail without one); `clock` drives the
    connectors and the daily charge's notion of today (pass the app's
    `FakeClock` in tests). The two system jobs are scheduled by cron unless
    their cron is None.
    """
    clock = clock or SystemClock()
    sessions = session_factory(create_engine_for(catalog_url))
    credits = CreditLedger(sessions)
    exporter = Exporter(sessions, credits, ai, clock, connector_timeout, credits_per_title)
    importer = Importer(sessions, clock, connector_timeout, page_size)
    translator = Translator(sessions, credits, ai, clock, credits_per_label)
    ownership = Ownership(sessions)
    owns_store = ownership.guard(store_id=Owned.STORE)
    owns_account = ownership.guard(store_id=Owned.STORE, account_id=Owned.ACCOUNT)
    owns_connection = ownership.guard(store_id=Owned.STORE, connection_id=Owned.CONNECTION)
    owns_export = ownership.guard(store_id=Owned.STORE, account_id=Owned.ACCOUNT, product_ids=Owned.PRODUCT)

    def job(
        name: str, priority: int, guard: TenantGuard | None = None
    ) -> Callable[[Callable[..., Any]], JobType[Any, Any]]:
        """A store job type; without a guard, an operator-only one (the system jobs)."""
        return app.job(
            name,
            queue=STORE_QUEUE,
            priority=priority,
            attempts=ATTEMPTS,
            backoff=RETRY_DELAYS,
            tenant_guard=guard,
            tenants=guard is not None,
        )

    @job("translation:ui-labels:bulk", PRIORITY_NORMAL, owns_store)
    async def translate_labels(
        ctx: JobContext,
        store_id: int,
        target_language: str,
        source_language: str = "en",
        user_id: int | None = None,
    ) -> dict[str, int]:
        """Translate every UI label the store lacks in `target_language`."""
        _ids(store_id=store_id)
        return await translator.run(ctx, store_id, source_language, target_language)

    def export(kind: MarketplaceKind) -> Callable[..., Awaitable[dict[str, object]]]:
        async def run(
            ctx: JobContext,
            store_id: int,
            account_id: int,
            product_ids: list[int],
            ai_optimize: bool = True,
        ) -> dict[str, object]:
            _ids(store_id=store_id, account_id=account_id)
            if not product_ids:
                raise Unrecoverable("product_ids is empty: nothing to export")
            return await exporter.run(ctx, kind, store_id, account_id, product_ids, ai_optimize)

        run.__doc__ = f"Export products to a {kind} account, titles optimised by AI when asked."
        return run

    amazon = job("amazon:export:products", PRIORITY_NORMAL, owns_export)(export(MarketplaceKind.AMAZON))
    ebay = job("ebay:export:products", PRIORITY_NORMAL, owns_export)(export(MarketplaceKind.EBAY))

    @job("shopify:import:collections", PRIORITY_NORMAL, owns_account)
    async def shopify_collections(ctx: JobContext, store_id: int, account_id: int) -> dict[str, int]:
        _ids(store_id=store_id, account_id=account_id)
        return await importer.shopify_collections(ctx, store_id, account_id)

    @job("shopify:import:products", PRIORITY_NORMAL, owns_account)
    async def shopify_products(ctx: JobContext, store_id: int, account_id: int) -> dict[str, int]:
        _ids(store_id=store_id, account_id=account_id)
        return await importer.shopify_products(ctx, store_id, account_id)

    @job("shopify:import:all", PRIORITY_HIGH, owns_account)
    async def shopify_all(ctx: JobContext, store_id: int, account_id: int) -> dict[str, int]:
        """Collections first, then products: one job, so the whole catalog moves at high priority."""
        _ids(store_id=store_id, account_id=account_id)
        collections = await importer.shopify_collections(ctx, store_id, account_id)
        return {**collections, **await importer.shopify_products(ctx, store_id, account_id)}

    @job("akeneo:import:products", PRIORITY_NORMAL, owns_connection)
    async def akeneo_products(ctx: JobContext, store_id: int, connection_id: int) -> dict[str, int]:
        _ids(store_id=store_id, connection_id=connection_id)
        return await importer.akeneo_products(ctx, store_id, connection_id)

    @job("akeneo:import:categories", PRIORITY_NORMAL, owns_connection)
    async def akeneo_categories(ctx: JobContext, store_id: int, connection_id: int) -> dict[str, int]:
        _ids(store_id=store_id, connection_id=connection_id)
        return await importer.akeneo_categories(ctx, store_id, connection_id)

    @job("system:daily_credit_deduction", PRIORITY_URGENT)
    async def daily_credits(ctx: JobContext) -> dict[str, object]:
        return await system.daily_credit_deduction(ctx, credits, clock)

    @job("system:cleanup", PRIORITY_LOW)
    async def cleanup(
        ctx: JobContext, max_age: float = cleanup_max_age, keep_last: int | None = None
    ) -> dict[str, int]:
        if max_age < 0 or (keep_last is not None and keep_last < 0):
            raise Unrecoverable("max_age and keep_last must not be negative")
        return await system.cleanup(ctx, keep_last, max_age)

    if daily_credit_cron is not None:
        app.schedule(cron=daily_credit_cron)(daily_credits)
    if cleanup_cron is not None:
        app.schedule(cron=cleanup_cron)(cleanup)

    types = [translate_labels, amazon, ebay, shopify_collections, shopify_products, shopify_all]
    types += [akeneo_products, akeneo_categories, daily_credits, cleanup]
    return StoreJobs(app, {t.name: t for t in types}, credits)
