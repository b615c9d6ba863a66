"""Store jobs (seed 001): translations, marketplace exports, catalog imports and system jobs.

`register(app, catalog_url=..., ai=AISettings(...))` declares the ten job
types; see `docs/commerce-store-jobs.md` for priorities, retries and payloads.
"""

from .connections import InvalidCredentials
from .credits import CreditLedger, InsufficientCredits
from .exports import ProductValidationFailed
from .providers import AIProvider, AISettings, ChatProvider
from .register import STORE_CONCURRENCY, STORE_QUEUE, StoreJobs, register
from .tables import AkeneoConnection, CreditBalance, CreditDebit, ImportedCategory, UiLabel

__all__ = [
    "STORE_CONCURRENCY",
    "STORE_QUEUE",
    "AIProvider",
    "AISettings",
    "AkeneoConnection",
    "ChatProvider",
    "CreditBalance",
    "CreditDebit",
    "CreditLedger",
    "ImportedCategory",
    "InsufficientCredits",
    "InvalidCredentials",
    "ProductValidationFailed",
    "StoreJobs",
    "UiLabel",
    "register",
]
