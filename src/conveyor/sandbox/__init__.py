"""Loopback simulators of the marketplace APIs Conveyor's connectors talk to.

Each simulator is a small FastAPI app that reproduces its real API's paths,
auth failures, validation errors, rate limits and headers (facts and sources
in `../shared/marketplace-apis.md`), with seeded fault injection, state a test
can inspect, and request counters. `start()` runs one on a free port in a
thread; `serve()` runs several until interrupted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from conveyor import Clock

from .akeneo import AkeneoConfig, AkeneoSandbox
from .amazon import AmazonConfig, AmazonSandbox
from .base import Counters, Sandbox
from .ebay import EbayConfig, EbaySandbox
from .faults import FaultConfig, FaultKind
from .jumpseller import JumpsellerConfig, JumpsellerSandbox
from .lwa import LwaAuthority
from .openai_compat import OpenAICompatConfig, OpenAICompatSandbox
from .promidata import PromidataConfig, PromidataSandbox
from .seller_api import SellerApiConfig, SellerApiSandbox
from .server import RunningSandbox, serve, start
from .shopify import ShopifyConfig, ShopifySandbox

_Factory = Callable[[FaultConfig, Clock | None], Sandbox]

SANDBOXES: dict[str, _Factory] = {
    "jumpseller": lambda f, c: JumpsellerSandbox(replace(JumpsellerConfig(), faults=f), clock=c),
    "shopify": lambda f, c: ShopifySandbox(replace(ShopifyConfig(), faults=f), clock=c),
    "amazon": lambda f, c: AmazonSandbox(replace(AmazonConfig(), faults=f), clock=c),
    "ebay": lambda f, c: EbaySandbox(replace(EbayConfig(), faults=f), clock=c),
    "akeneo": lambda f, c: AkeneoSandbox(replace(AkeneoConfig(), faults=f), clock=c),
    "openai": lambda f, c: OpenAICompatSandbox(replace(OpenAICompatConfig(), faults=f), clock=c),
    "promidata": lambda f, c: PromidataSandbox(replace(PromidataConfig(), faults=f), clock=c),
    "seller_api": lambda f, c: SellerApiSandbox(replace(SellerApiConfig(), faults=f), clock=c),
}


def create(name: str, *, faults: FaultConfig | None = None, clock: Clock | None = None) -> Sandbox:
    """A simulator with its default configuration, by name (see `SANDBOXES`)."""
    try:
        factory = SANDBOXES[name]
    except KeyError:
        raise ValueError(f"unknown sandbox {name!r}; choose from {', '.join(SANDBOXES)}") from None
    return factory(faults or FaultConfig(), clock)


__all__ = [
    "SANDBOXES",
    "AkeneoConfig",
    "AkeneoSandbox",
    "AmazonConfig",
    "AmazonSandbox",
    "Counters",
    "EbayConfig",
    "EbaySandbox",
    "FaultConfig",
    "FaultKind",
    "JumpsellerConfig",
    "JumpsellerSandbox",
    "LwaAuthority",
    "OpenAICompatConfig",
    "OpenAICompatSandbox",
    "PromidataConfig",
    "PromidataSandbox",
    "RunningSandbox",
    "Sandbox",
    "SellerApiConfig",
    "SellerApiSandbox",
    "ShopifyConfig",
    "ShopifySandbox",
    "create",
    "serve",
    "start",
]
