"""The demo's simulated outside world: marketplaces, a PIM, a supplier feed and an AI provider.

Each simulator runs on its own loopback port in a thread of the demo
process. A light sprinkle of faults (5xx answers, surprise 429s) on the
marketplaces makes retries and back-off visible; the failures the demo is
about are forced on exact requests instead, so every run tells the same story.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

import httpx

from conveyor.sandbox import (
    AmazonSandbox,
    EbaySandbox,
    FaultConfig,
    FaultKind,
    JumpsellerConfig,
    JumpsellerSandbox,
    RunningSandbox,
    Sandbox,
    ShopifyConfig,
    ShopifySandbox,
    start,
)
from conveyor.sandbox.akeneo import AkeneoSandbox
from conveyor.sandbox.lwa import LwaAuthority
from conveyor.sandbox.openai_compat import OpenAICompatSandbox
from conveyor.sandbox.promidata import PromidataConfig, PromidataSandbox
from conveyor.sandbox.seller_api import SellerApiConfig, SellerApiSandbox
from conveyor.sandbox.shopify_catalog_read import collections_of

from .catalog_seed import NAMES

MARKETPLACE_FAULTS = FaultConfig(seed=2026, error_rate=0.01, throttle_rate=0.01)
CREDENTIALS = {
    "jumpseller": "CONVEYOR_DEMO_JUMPSELLER",
    "shopify": "CONVEYOR_DEMO_SHOPIFY",
    "shopify-source": "CONVEYOR_DEMO_SHOPIFY_SOURCE",
    "amazon": "CONVEYOR_DEMO_AMAZON",
    "ebay": "CONVEYOR_DEMO_EBAY",
    "akeneo": "CONVEYOR_DEMO_AKENEO",
    "openai": "CONVEYOR_DEMO_OPENAI",
}
"""Environment variables holding each simulator's credentials; accounts refer to them as `env:NAME`."""
REGIONS: tuple[Literal["NA", "EU", "FE"], ...] = ("NA", "EU", "FE")
"""Selling Partner API regions, one simulator each, sharing one Login with Amazon authority."""


@dataclass
class Simulators:
    """Start every simulator on enter, stop them all on exit."""

    families: int
    jumpseller: JumpsellerSandbox = field(
        default_factory=lambda: JumpsellerSandbox(JumpsellerConfig(faults=MARKETPLACE_FAULTS))
    )
    shopify: ShopifySandbox = field(
        default_factory=lambda: ShopifySandbox(ShopifyConfig(faults=MARKETPLACE_FAULTS))
    )
    shopify_source: ShopifySandbox = field(default_factory=ShopifySandbox)
    amazon: AmazonSandbox = field(default_factory=AmazonSandbox)
    ebay: EbaySandbox = field(default_factory=EbaySandbox)
    akeneo: AkeneoSandbox = field(default_factory=AkeneoSandbox)
    openai: OpenAICompatSandbox = field(default_factory=OpenAICompatSandbox)
    promidata: PromidataSandbox = field(init=False)
    lwa: LwaAuthority = field(default_factory=LwaAuthority)
    sellers: dict[str, SellerApiSandbox] = field(init=False)
    running: dict[str, RunningSandbox] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.promidata = PromidataSandbox(PromidataConfig(seed=2026, families=self.families))
        self.sellers = {
            region: SellerApiSandbox(SellerApiConfig(region=region, seed=2026), lwa=self.lwa)
            for region in REGIONS
        }

    def __enter__(self) -> Simulators:
        try:
            for name, sandbox in self._all().items():
                self.running[name] = start(sandbox)
            self._fill_sources()
            self._export_credentials()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        for server in self.running.values():
            server.stop()
        self.running.clear()

    def url(self, name: str) -> str:
        """What a connector takes as its base URL."""
        return self.running[name].api_url

    @property
    def seller_api_urls(self) -> dict[str, str]:
        return {region: self.running[f"seller-api-{region.lower()}"].base_url for region in REGIONS}

    def force_demo_failures(self) -> None:
        """The stories the summary tells: a 429 the AI calls wait out, an eBay outage the export retries.

        eBay answers 5xx to the export's first three requests: more than the
        connector repeats a request itself, so the attempt fails and the
        engine retries the job after its first back-off (5 s).
        """
        self.openai.faults.force(FaultKind.THROTTLE)
        self.ebay.faults.force(FaultKind.ERROR, FaultKind.ERROR, FaultKind.ERROR)

    def _all(self) -> dict[str, Sandbox]:
        return {
            "jumpseller": self.jumpseller,
            "shopify": self.shopify,
            "shopify-source": self.shopify_source,
            "amazon": self.amazon,
            "ebay": self.ebay,
            "akeneo": self.akeneo,
            "openai": self.openai,
            "promidata": self.promidata,
            **{f"seller-api-{region.lower()}": sandbox for region, sandbox in self.sellers.items()},
        }

    def _fill_sources(self) -> None:
        """What the imports find: a Shopify store with collections and products, an Akeneo PIM."""
        source = self.running["shopify-source"]
        headers = {"X-Shopify-Access-Token": self.shopify_source.config.access_token}
        with httpx.Client(base_url=f"{source.api_url}/admin/api/2026-04", headers=headers) as http:
            for n in range(24):
                product = {
                    "title": f"{NAMES[n % len(NAMES)]} (imported {n + 1})",
                    "variants": [{"sku": f"SHOP-{n:03d}", "price": f"{20 + n}.00"}],
                }
                http.post("/products.json", json={"product": product}).raise_for_status()
        for title in ("Summer", "Outdoor", "Kitchen", "Sale"):
            collections_of(self.shopify_source).add(title)
        for n in range(30):
            name = NAMES[n % len(NAMES)]
            self.akeneo.store.add_product(f"pim-{n:03d}", name=f"{name} PIM {n + 1}", price=f"{35 + n}.00")
        self.akeneo.store.add_category("master", "Master catalog")
        for room in ("living", "garden", "office"):
            self.akeneo.store.add_category(room, room.title(), parent="master")

    def _export_credentials(self) -> None:
        """Child processes inherit these; the catalog only names them."""
        amazon, akeneo = self.amazon.config, self.akeneo.config
        values = {
            "jumpseller": {
                "login": self.jumpseller.config.login,
                "authtoken": self.jumpseller.config.authtoken,
            },
            "shopify": {"access_token": self.shopify.config.access_token},
            "shopify-source": {"access_token": self.shopify_source.config.access_token},
            "amazon": {
                "client_id": amazon.client_id,
                "client_secret": amazon.client_secret,
                "refresh_token": amazon.refresh_token,
            },
            "ebay": {"access_token": self.ebay.config.access_token},
            "akeneo": {
                "client_id": akeneo.client_id,
                "secret": akeneo.secret,
                "username": akeneo.username,
                "password": akeneo.password,
            },
            "openai": {"api_key": self.openai.config.api_key},
        }
        for name, variable in CREDENTIALS.items():
            os.environ[variable] = json.dumps(values[name])
