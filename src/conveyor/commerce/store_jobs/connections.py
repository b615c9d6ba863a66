"""Opening a store's external systems from ids: marketplace accounts and Akeneo connections.

A job payload names an account or connection id and the store it must
belong to; here the row is loaded, checked against the store and the kind the
job expects, its `credentials_ref` resolved, and the connector built. Every
connector gets a `RefusalWatch` transport, so a failure can be told apart by
HTTP status as bad credentials (401/403, which the connectors raise as plain
`Unrecoverable`) and reported as such.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from conveyor import Clock, Unrecoverable
from conveyor.commerce.catalog import MarketplaceAccount, MarketplaceKind
from conveyor.commerce.connectors import (
    AmazonConnector,
    Connector,
    EbayConnector,
    EbaySettings,
    RateLimitHook,
)
from conveyor.commerce.connectors.akeneo import AkeneoConnector, CredentialsRejected
from conveyor.commerce.connectors.base import DEFAULT_RETRY
from conveyor.commerce.connectors.shopify_read import ShopifyCatalogReader
from conveyor.commerce.secrets import resolve_credentials

from .tables import AkeneoConnection

REFUSED = frozenset({401, 403})
REJECTED_CONTENT = frozenset({200, 400, 422})
"""Statuses of an `Unrecoverable` answer that refused what was sent (Amazon says INVALID with a 200)."""


class InvalidCredentials(Unrecoverable):
    """The external system refused the account's credentials; re-configuring them, not retrying, fixes it."""


class RefusalWatch(httpx.AsyncBaseTransport):
    """A transport that remembers the last answer's status, to tell why a connector gave up."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.last_status: int | None = None

    @property
    def refused(self) -> bool:
        """The last answer refused the credentials."""
        return self.last_status in REFUSED

    @property
    def rejected_content(self) -> bool:
        """The last answer refused the data sent (validation), not the caller."""
        return self.last_status in REJECTED_CONTENT

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        self.last_status = response.status_code
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@asynccontextmanager
async def credentials_checked(what: str, watch: RefusalWatch) -> AsyncIterator[None]:
    """Re-raise a refusal of the credentials inside the block as `InvalidCredentials`."""
    try:
        yield
    except InvalidCredentials:
        raise
    except CredentialsRejected as e:
        raise InvalidCredentials(f"Invalid credentials for {what}: {e}") from e
    except Unrecoverable as e:
        if watch.refused:
            raise InvalidCredentials(f"Invalid credentials for {what}: {e}") from e
        raise


def load_account(
    sessions: sessionmaker[Session], store_id: int, account_id: int, kinds: tuple[MarketplaceKind, ...]
) -> MarketplaceAccount:
    """The store's account, detached; `Unrecoverable` if missing, another store's, or of another kind."""
    with sessions.begin() as session:
        account = session.get(MarketplaceAccount, account_id)
        if account is None or account.store_id != store_id:
            raise Unrecoverable(f"store {store_id} has no marketplace account {account_id}")
        if account.kind not in kinds:
            raise Unrecoverable(f"account {account_id} is a {account.kind} account, not {'/'.join(kinds)}")
        session.expunge(account)
        return account


def load_akeneo(sessions: sessionmaker[Session], store_id: int, connection_id: int) -> AkeneoConnection:
    with sessions.begin() as session:
        connection = session.get(AkeneoConnection, connection_id)
        if connection is None or connection.store_id != store_id:
            raise Unrecoverable(f"store {store_id} has no Akeneo connection {connection_id}")
        session.expunge(connection)
        return connection


EXPORT_RETRY = replace(DEFAULT_RETRY, rate_limit_tries=10)
"""An export publishes every product in one run, so a 429 is waited out on the refused request.

Handing it to the engine instead restarts the run from its first product,
and against a burst smaller than one export (Amazon's listings burst is 10
requests) the run would republish the same first products forever."""


def marketplace_connector(
    account: MarketplaceAccount, hook: RateLimitHook, clock: Clock, timeout: float, watch: RefusalWatch
) -> Connector:
    """The publishing connector for an Amazon or eBay account, configured from its settings."""
    credentials = resolve_credentials(account.credentials_ref)
    settings: dict[str, Any] = dict(account.settings)
    common: dict[str, Any] = {
        "on_rate_limit": hook,
        "clock": clock,
        "timeout": timeout,
        "transport": watch,
        "retry": EXPORT_RETRY,
    }
    for name in ("base_url", "token_url"):
        if name in settings:
            common[name] = str(settings.pop(name))
    if account.kind is MarketplaceKind.AMAZON:
        return AmazonConnector(
            credentials,
            seller_id=str(settings["seller_id"]),
            marketplace_id=str(settings["marketplace_id"]),
            **common,
        )
    common.pop("token_url", None)
    fields = {k: str(v) for k, v in settings.items() if k in EbaySettings.__dataclass_fields__}
    return EbayConnector(credentials, EbaySettings(**fields), **common)


def shopify_reader(
    account: MarketplaceAccount,
    hook: RateLimitHook,
    clock: Clock,
    timeout: float,
    page_size: int,
    watch: RefusalWatch,
) -> ShopifyCatalogReader:
    return ShopifyCatalogReader(
        resolve_credentials(account.credentials_ref),
        shop_url=str(account.settings["shop_url"]),
        page_size=page_size,
        on_rate_limit=hook,
        clock=clock,
        timeout=timeout,
        transport=watch,
    )


def akeneo_connector(
    connection: AkeneoConnection,
    hook: RateLimitHook,
    clock: Clock,
    timeout: float,
    page_size: int,
    watch: RefusalWatch,
) -> AkeneoConnector:
    return AkeneoConnector(
        resolve_credentials(connection.credentials_ref),
        base_url=connection.base_url,
        page_size=page_size,
        on_rate_limit=hook,
        clock=clock,
        timeout=timeout,
        transport=watch,
    )
