"""Promidata supplier catalog sync (seed 003): feed → product families → catalog, pictures stored once.

`register(app, catalog_url=..., feed_url=..., storage=...)` declares the jobs
and returns a `SupplierSync` whose `start_sync()` runs a sync queued or inline.
See docs/commerce-suppliers.md.
"""

from .grouping import Family, FamilyKey
from .jobs import FAMILY_QUEUE, IMAGE_QUEUE, QUEUE_CONCURRENCY, SUPPLIER_QUEUE, SupplierJobs
from .models import FamilyHash, Supplier, SupplierMedia
from .pipeline import STEPS, SyncSettings
from .service import SupplierSync, register
from .status import JobStatus, QueuedJob, QueueStats, SupplierResult, SyncDone, SyncQueued
from .storage import LocalStorage, MediaStorage, S3Storage
from .store import UnknownSupplier

__all__ = [
    "FAMILY_QUEUE",
    "IMAGE_QUEUE",
    "QUEUE_CONCURRENCY",
    "STEPS",
    "SUPPLIER_QUEUE",
    "Family",
    "FamilyHash",
    "FamilyKey",
    "JobStatus",
    "LocalStorage",
    "MediaStorage",
    "QueueStats",
    "QueuedJob",
    "S3Storage",
    "Supplier",
    "SupplierJobs",
    "SupplierMedia",
    "SupplierResult",
    "SupplierSync",
    "SyncDone",
    "SyncQueued",
    "SyncSettings",
    "UnknownSupplier",
    "register",
]
