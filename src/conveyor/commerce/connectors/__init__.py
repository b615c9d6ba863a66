"""Marketplace connectors: one module per API, all on a pooled `httpx.AsyncClient`.

Each connector publishes a `Listing` in three phases (`create_or_update_product`,
`upsert_variants`, `add_images`, or all at once with `publish`), reports every
rate-limit reading to an optional `RateLimitHook`, and raises only
`conveyor.Unrecoverable`, `conveyor.RateLimited` or `TransientError`.
Credentials come from `conveyor.commerce.secrets.resolve_credentials`.
"""

from .amazon import AmazonConnector
from .base import (
    Connector,
    CredentialsRejected,
    Pacer,
    RateLimitHook,
    RateLimitInfo,
    RetryPolicy,
    TransientError,
    key_limiter_hook,
)
from .ebay import EbayConnector, EbaySettings
from .jumpseller import JumpsellerConnector
from .models import Image, Listing, RemoteProduct, Variant
from .shopify import ShopifyConnector

__all__ = [
    "AmazonConnector",
    "Connector",
    "CredentialsRejected",
    "EbayConnector",
    "EbaySettings",
    "Image",
    "JumpsellerConnector",
    "Listing",
    "Pacer",
    "RateLimitHook",
    "RateLimitInfo",
    "RemoteProduct",
    "RetryPolicy",
    "ShopifyConnector",
    "TransientError",
    "Variant",
    "key_limiter_hook",
]
