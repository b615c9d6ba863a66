"""The seller-data app configured from environment variables, for `service.py` and for tests.

Everything comes from the environment, so one module serves the worker
processes, the scheduler processes and the API process (which only reads):

| variable | meaning | default |
|---|---|---|
| `CONVEYOR_URL` | the engine's job store (SQLite file or Redis) | engine default |
| `SELLER_DATA_CATALOG_URL` | database with the seller-data tables | required |
| `SELLER_DATA_SP_API_NA` / `_EU` / `_FE` | regional SP-API base URLs | Amazon's production hosts |
| `SELLER_DATA_LWA_TOKEN_URL` | LWA token endpoint | `https://api.amazon.com/auth/o2/token` |
| `SELLER_DATA_CRON` | when the tick fires | `0 * * * *` (hourly) |
| `SELLER_DATA_EVERY` | seconds between ticks, instead of the cron | unset |
| `SELLER_DATA_STALE_AFTER` | seconds after which a user is due again | `3600` |
| `SELLER_DATA_WINDOW_DAYS` | how far back orders are read | `30` |
| `CONVEYOR_CONCURRENCY_SELLER_DATA` | users processed at once per worker | `3` |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from conveyor import ConfigurationError, Conveyor
from conveyor.commerce.connectors.seller_api import DEFAULT_TOKEN_URL, REGION_ENDPOINTS

from .jobs import QUEUE, register

WORKER_CONCURRENCY = 3
"""The seed's jobs per worker; `CONVEYOR_CONCURRENCY_SELLER_DATA` overrides it."""


@dataclass(frozen=True)
class SellerDataSettings:
    catalog_url: str
    sp_api_base_urls: Mapping[str, str]
    token_url: str = DEFAULT_TOKEN_URL
    cron: str = "0 * * * *"
    every: float | None = None
    stale_after: float = 3600.0
    window_days: int = 30

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SellerDataSettings:
        catalog_url = env.get("SELLER_DATA_CATALOG_URL", "")
        if not catalog_url:
            raise ConfigurationError("SELLER_DATA_CATALOG_URL must name the seller-data database")
        urls = {
            region: env.get(f"SELLER_DATA_SP_API_{region}", url) for region, url in REGION_ENDPOINTS.items()
        }
        return cls(
            catalog_url=catalog_url,
            sp_api_base_urls=urls,
            token_url=env.get("SELLER_DATA_LWA_TOKEN_URL", DEFAULT_TOKEN_URL),
            cron=env.get("SELLER_DATA_CRON", "0 * * * *"),
            every=_number(env, "SELLER_DATA_EVERY", None),
            stale_after=_number(env, "SELLER_DATA_STALE_AFTER", 3600.0) or 0.0,
            window_days=int(_number(env, "SELLER_DATA_WINDOW_DAYS", 30.0) or 30),
        )


def _number(env: Mapping[str, str], name: str, default: float | None) -> float | None:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ConfigurationError(f"{name} must not be negative, got {raw!r}")
    return value


def create_app(env: Mapping[str, str] | None = None) -> Conveyor:
    """A Conveyor app with the seller-data jobs and schedule, configured from `env` (default: os.environ)."""
    settings = SellerDataSettings.from_env(os.environ if env is None else env)
    # Keyed like the environment variable's suffix, so CONVEYOR_CONCURRENCY_SELLER_DATA replaces it.
    app = Conveyor(concurrency={QUEUE.replace("-", "_").upper(): WORKER_CONCURRENCY})
    register(
        app,
        catalog_url=settings.catalog_url,
        sp_api_base_urls=settings.sp_api_base_urls,
        token_url=settings.token_url,
        cron=settings.cron,
        every=settings.every,
        stale_after=settings.stale_after,
        window_days=settings.window_days,
    )
    return app
