"""The supplier sync's entry points: `register` declares the jobs, `SupplierSync` starts and watches syncs.

`start_sync` enqueues one supplier job per supplier (a dedup key keeps one
live sync per supplier) or, with `use_queue=False`, runs the very same
pipeline inline without a worker, for scripts and debugging.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from conveyor import Conveyor, JobNotFound, JobOptions

from ..db import create_engine_for, session_factory
from ..tenancy import Ownership
from .feed import SUPPLIER_CODE, FeedError
from .grouping import FamilyKey
from .jobs import FAMILY_QUEUE, IMAGE_QUEUE, SUPPLIER_QUEUE, SupplierJobs, declare
from .pipeline import SupplierPipeline, SyncSettings
from .status import (
    JobStatus,
    QueuedJob,
    QueueStats,
    SupplierResult,
    SyncDone,
    SyncQueued,
    job_status,
    queue_state,
    queue_stats,
)
from .storage import LocalStorage, MediaStorage
from .store import SupplierRef, SupplierStore

log = logging.getLogger(__name__)

DEFAULT_MEDIA_FOLDER = "supplier-media"
"""Where pictures go when no storage is given: a folder in the working directory."""

QUEUE_ROLES = {SUPPLIER_QUEUE: "supplierSync", FAMILY_QUEUE: "productFamily", IMAGE_QUEUE: "imageUpload"}
"""The seed's names for the three queues in `get_queue_stats()`."""


class SupplierSync:
    """Start syncs (queued or inline) and read their status in the seed's shapes."""

    def __init__(self, app: Conveyor, jobs: SupplierJobs, pipeline: SupplierPipeline) -> None:
        self.app = app
        self.jobs = jobs
        self.pipeline = pipeline

    def add_supplier(self, *, store_id: int, code: str, name: str) -> int:
        """Register a supplier folder of the feed (code like `A23`) for a store; returns its id."""
        if not SUPPLIER_CODE.match(code):
            raise ValueError(f"supplier code {code!r} must be a capital letter followed by digits, like A23")
        return self.pipeline.store.add_supplier(store_id=store_id, code=code, name=name)

    async def start_sync(
        self, supplier_id: int | None = None, use_queue: bool = True
    ) -> SyncQueued | SyncDone:
        """Sync one supplier, or every active one; queued returns job ids, inline returns results.

        Raises `UnknownSupplier` for an id that is not an active supplier.
        """
        suppliers = await asyncio.to_thread(self.pipeline.store.suppliers, supplier_id)
        if not use_queue:
            results = [await self.sync_inline(supplier) for supplier in suppliers]
            return SyncDone(
                success=all(r.errors == 0 for r in results), suppliersProcessed=len(results), results=results
            )
        jobs = []
        for supplier in suppliers:
            options = JobOptions(dedup_key=f"supplier-sync:{supplier.id}")
            job = await self.app.enqueue(self.jobs.sync.name, {"supplier_id": supplier.id}, options)
            jobs.append(
                QueuedJob(supplier=supplier.code, jobId=job.id, queueName=job.queue, status=queue_state(job))
            )
        return SyncQueued(suppliersEnqueued=len(jobs), jobs=jobs)

    async def sync_inline(self, supplier: SupplierRef) -> SupplierResult:
        """The queued pipeline without a queue: families one after another, pictures concurrently."""
        started = self.app.clock.now()
        pipeline = self.pipeline

        def report(percent: float, step: str, message: str) -> None:
            log.info("supplier %s: %s (%g%%): %s", supplier.code, step, percent, message)

        try:
            plan = await pipeline.plan(supplier, report)
        except FeedError as e:  # this supplier's feed is down; the other suppliers still sync
            log.warning("supplier %s: feed unavailable: %s", supplier.code, e)
            return SupplierResult(
                supplier=supplier.code,
                productsProcessed=0,
                errors=1,
                skipped=0,
                duration=f"{self.app.clock.now() - started:.2f}s",
            )
        processed, errors = 0, len(plan.problems)
        async with pipeline.client() as client:
            feed = pipeline.feed(client)
            for family in plan.changed:
                try:
                    written = await pipeline.write_family(supplier, family)
                    await asyncio.gather(
                        *(
                            pipeline.store_image(feed, supplier.id, written.product_id, s)
                            for s in written.to_store
                        )
                    )
                    await pipeline.finish_family(supplier, family, written.product_id)
                    processed += 1
                except Exception as e:  # noqa: BLE001 - one family's failure is counted; the others still sync
                    log.warning("supplier %s: family %s failed: %r", supplier.code, family.key, e)
                    errors += 1
        await asyncio.to_thread(pipeline.store.finish_supplier, supplier.id)
        report(100, "done", f"{processed} families written, {plan.skipped} unchanged, {errors} errors")
        return SupplierResult(
            supplier=supplier.code,
            productsProcessed=processed,
            errors=errors,
            skipped=plan.skipped,
            duration=f"{self.app.clock.now() - started:.2f}s",
        )

    async def aclose(self) -> None:
        """Close the HTTP connections image jobs keep open on the current event loop."""
        await self.pipeline.aclose()

    async def get_job_status(self, queue: str, job_id: str) -> JobStatus:
        """A job of one of the sync's queues; `found=False` for an unknown id or another queue's job."""
        try:
            job = await self.app.get_job(job_id)
        except JobNotFound:
            return JobStatus(found=False, jobId=job_id, queueName=queue)
        if job.queue != queue:
            return JobStatus(found=False, jobId=job_id, queueName=queue)
        return job_status(job)

    async def get_queue_stats(self, queue: str | None = None) -> dict[str, QueueStats] | QueueStats:
        """Counts per state for the three queues (keyed by the seed's names), or for one queue."""
        if queue is not None and queue not in QUEUE_ROLES:
            raise ValueError(f"unknown queue {queue!r}; the supplier sync uses {', '.join(QUEUE_ROLES)}")
        stats = await self.app.stats()
        if queue is not None:
            return queue_stats(stats, queue)
        return {role: queue_stats(stats, name) for name, role in QUEUE_ROLES.items()}


def register(
    app: Conveyor,
    *,
    catalog_url: str,
    feed_url: str,
    storage: MediaStorage | None = None,
    family_key: FamilyKey | str = FamilyKey.SKU,
    language: str = "en",
    price_region: str | None = "GERMANY",
    fetch_concurrency: int = 8,
    fetch_attempts: int = 3,
    retry_delay: float = 0.5,
    timeout: float = 30.0,
    attempts: int = 4,
    backoff: Sequence[float] = (5, 30, 300),
) -> SupplierSync:
    """Declare the supplier sync's job types on `app`; returns the service that starts syncs.

    `feed_url` is the feed's profile URL (`.../Profiles/Live/<profile id>`),
    which is its access key: it stays in the process and never enters a
    payload or a log. `storage` defaults to a local `supplier-media` folder.
    `fetch_*`/`retry_delay` govern one download's retries inside a job;
    `attempts`/`backoff` govern the jobs' own retries.
    """
    try:
        key = FamilyKey(family_key)
    except ValueError:
        choices = ", ".join(k.value for k in FamilyKey)
        raise ValueError(f"family_key must be one of {choices}, got {family_key!r}") from None
    settings = SyncSettings(
        feed_url=feed_url,
        family_key=key,
        language=language,
        price_region=price_region,
        fetch_concurrency=fetch_concurrency,
        fetch_attempts=fetch_attempts,
        retry_delay=retry_delay,
        timeout=timeout,
    )
    sessions = session_factory(create_engine_for(catalog_url))
    store = SupplierStore(sessions)
    pipeline = SupplierPipeline(settings, store, storage or LocalStorage(Path(DEFAULT_MEDIA_FOLDER)))
    jobs = declare(app, pipeline, Ownership(sessions), attempts=attempts, backoff=backoff)
    return SupplierSync(app, jobs, pipeline)
