"""Every commerce pipeline, registered on one app, configured from the environment `conveyor demo` sets.

Worker and API processes import the same module as the demo's own process,
so the configuration travels as environment variables: URLs of the
simulators and where the catalog and pictures live. Secrets stay in
`env:` credential references, never in this configuration or in payloads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from conveyor import ConfigurationError, Conveyor
from conveyor.commerce import suppliers
from conveyor.commerce.pipelines import CampaignJobs
from conveyor.commerce.pipelines import register as register_campaigns
from conveyor.commerce.seller_data import SellerDataJobs
from conveyor.commerce.seller_data import register as register_seller_data
from conveyor.commerce.store_jobs import AISettings, StoreJobs
from conveyor.commerce.store_jobs import register as register_store_jobs

CATALOG_URL = "CONVEYOR_DEMO_CATALOG_URL"
FEED_URL = "CONVEYOR_DEMO_FEED_URL"
MEDIA_DIR = "CONVEYOR_DEMO_MEDIA_DIR"
OPENAI_URL = "CONVEYOR_DEMO_OPENAI_URL"
OPENAI_CREDENTIALS = "CONVEYOR_DEMO_OPENAI"
SELLER_API_URLS = "CONVEYOR_DEMO_SELLER_API_URLS"
"""A JSON object: Selling Partner API region -> base URL."""
LWA_URL = "CONVEYOR_DEMO_LWA_URL"
STAGGER = 0.2
"""Seconds between a campaign's batches: short, so the demo's campaign ends in seconds, not minutes."""


@dataclass(frozen=True)
class DemoServices:
    campaigns: CampaignJobs
    suppliers: suppliers.SupplierSync
    store_jobs: StoreJobs
    seller_data: SellerDataJobs


def register_all(app: Conveyor, env: Mapping[str, str]) -> DemoServices:
    """Declare every pipeline's job types and schedules on `app`."""
    catalog_url = _need(env, CATALOG_URL)
    return DemoServices(
        campaigns=register_campaigns(app, catalog_url=catalog_url, stagger=STAGGER, phase_backoff=(1, 2, 5)),
        suppliers=suppliers.register(
            app,
            catalog_url=catalog_url,
            feed_url=_need(env, FEED_URL),
            storage=suppliers.LocalStorage(Path(_need(env, MEDIA_DIR))),
        ),
        store_jobs=register_store_jobs(
            app,
            catalog_url=catalog_url,
            ai=AISettings(credentials_ref=f"env:{OPENAI_CREDENTIALS}", base_url=_need(env, OPENAI_URL)),
        ),
        seller_data=register_seller_data(
            app,
            catalog_url=catalog_url,
            sp_api_base_urls=json.loads(_need(env, SELLER_API_URLS)),
            token_url=_need(env, LWA_URL),
        ),
    )


def _need(env: Mapping[str, str], name: str) -> str:
    try:
        return env[name]
    except KeyError:
        raise ConfigurationError(
            f"{name} is not set: conveyor.commerce.demo.app is meant to be run by `conveyor demo`"
        ) from None
