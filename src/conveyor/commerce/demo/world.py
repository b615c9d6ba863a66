"""What `conveyor demo` runs against: simulators on loopback, a seeded catalog, and the jobs to start.

The simulators run as threads of the demo process; worker processes reach
them over HTTP like any marketplace, through URLs stored in the catalog and
credentials handed down in the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from conveyor import Job, TrackerNode
from conveyor.sandbox import (
    FaultConfig,
    JumpsellerConfig,
    JumpsellerSandbox,
    RunningSandbox,
    ShopifyConfig,
    ShopifySandbox,
    start,
)

from . import catalog_seed
from .app import CATALOG_URL_ENV

FAULTS = FaultConfig(seed=2026, error_rate=0.01, throttle_rate=0.01)
"""A few 5xx answers and surprise 429s, so the demo shows retries and back-off at work."""


@dataclass(frozen=True)
class Launch:
    """One top-level job the demo enqueues and watches; `describe` turns its end into a summary cell."""

    label: str
    job_type: str
    payload: dict[str, Any]
    describe: Callable[[Job, TrackerNode | None], str]


class DemoWorld:
    """Start the simulators and seed the catalog on enter; stop the simulators on exit."""

    def __init__(self, directory: Path, *, products: int) -> None:
        self.directory = directory
        self.products = products
        self.catalog_url = f"sqlite:///{(directory / 'catalog.db').resolve()}"
        self.servers: list[RunningSandbox] = []
        self.campaign_id = 0

    def __enter__(self) -> DemoWorld:
        try:
            jumpseller = JumpsellerSandbox(JumpsellerConfig(faults=FAULTS))
            shopify = ShopifySandbox(ShopifyConfig(faults=FAULTS))
            self.servers = [start(jumpseller), start(shopify)]
            catalog_seed.export_credentials(jumpseller, shopify)
            self.campaign_id = catalog_seed.seed_catalog(
                self.catalog_url,
                products=self.products,
                jumpseller_url=self.servers[0].api_url,
                shopify_url=self.servers[1].api_url,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.servers = []

    @property
    def env(self) -> dict[str, str]:
        """What the worker and API processes need beyond the jobs URL (credentials are already exported)."""
        return {CATALOG_URL_ENV: self.catalog_url}

    @property
    def simulators(self) -> dict[str, str]:
        return {server.sandbox.name: server.base_url for server in self.servers}

    def launches(self) -> list[Launch]:
        return [
            Launch(
                f"campaign: {self.products} products → Jumpseller, Shopify",
                "campaign:process",
                {"campaign_id": self.campaign_id},
                _campaign_outcome,
            )
        ]


def _campaign_outcome(job: Job, tracker: TrackerNode | None) -> str:
    result = job.result if isinstance(job.result, dict) else {}
    if not result:
        return job.error.message if job.error else ""
    errors = ", ".join(f"{n} {kind}" for kind, n in sorted(result.get("errors", {}).items()))
    text = f"{result.get('status')}: {result.get('published')} of {result.get('total')} listings published"
    return f"{text}; errors: {errors}" if errors else text
