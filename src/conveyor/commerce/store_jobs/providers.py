"""AI work behind one interface: translating UI texts and optimising marketplace titles.

Jobs depend on `AIProvider`, not on a vendor, so a store can point at OpenAI
or at any server that speaks the OpenAI chat completions API (a local model,
a gateway) by changing `AISettings`, and tests can run against the simulator.
The API key is resolved from `credentials_ref` where the job runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from conveyor import Clock
from conveyor.commerce.connectors import RateLimitHook
from conveyor.commerce.connectors.openai_compat import DEFAULT_BASE_URL, OpenAICompatConnector
from conveyor.commerce.secrets import Credentials, resolve_credentials

from .connections import RefusalWatch, credentials_checked

TITLE_LIMITS = {"amazon": 200, "ebay": 80}
"""Longest title each marketplace accepts; the prompt asks for it and the answer is cut to it."""


class AIProvider(Protocol):
    async def translate(self, text: str, *, source: str, target: str) -> str: ...

    async def optimize_title(self, title: str, *, marketplace: str, description: str) -> str: ...


@dataclass(frozen=True)
class AISettings:
    credentials_ref: str
    """`env:NAME` or `file:...#section` holding `{"api_key": ...}` (or a bare key)."""
    model: str = "gpt-4o-mini"
    base_url: str = DEFAULT_BASE_URL
    timeout: float = 60.0


class ChatProvider:
    """`AIProvider` over an OpenAI-compatible chat completions connector."""

    def __init__(self, connector: OpenAICompatConnector) -> None:
        self._connector = connector

    async def translate(self, text: str, *, source: str, target: str) -> str:
        system = (
            f"Translate the user's storefront UI text from {source} to {target}. "
            "Keep placeholders such as {count} unchanged. Answer with the translation only."
        )
        return await self._connector.complete([("system", system), ("user", text)])

    async def optimize_title(self, title: str, *, marketplace: str, description: str) -> str:
        limit = TITLE_LIMITS.get(marketplace, 80)
        system = (
            f"Rewrite the user's product title for a {marketplace} listing: at most {limit} characters, "
            "key attributes first, no promotional words. Answer with the title only."
        )
        user = f"{title}\n\n{description}".strip() if description else title
        answer = await self._connector.complete([("system", system), ("user", user)])
        return answer[:limit].strip() or title


@asynccontextmanager
async def open_provider(
    settings: AISettings, hook: RateLimitHook | None, clock: Clock
) -> AsyncIterator[AIProvider]:
    """A provider for one job run; its connection pool closes when the block ends.

    A refused API key inside the block surfaces as `InvalidCredentials`.

    `hook` gets the provider's rate-limit readings: pass the job's key limiter
    only when the job's key is the provider's (a marketplace export's key
    belongs to the marketplace).
    """
    credentials = resolve_credentials(settings.credentials_ref)
    if "api_key" not in credentials and "token" in credentials:
        credentials = Credentials({"api_key": credentials["token"]}, credentials.reference)
    watch = RefusalWatch()
    connector = OpenAICompatConnector(
        credentials,
        model=settings.model,
        base_url=settings.base_url,
        timeout=settings.timeout,
        on_rate_limit=hook,
        clock=clock,
        transport=watch,
    )
    async with connector, credentials_checked("the AI provider", watch):
        yield ChatProvider(connector)
