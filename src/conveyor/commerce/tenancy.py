"""Which tenant owns which catalog row, and the guards that hold every commerce job to it.

A store is a tenant named `store-<id>`: it owns itself and every row that
hangs off it (marketplace accounts, products, campaigns, shipments to its
accounts, suppliers, Akeneo connections). An Amazon seller of the seller-data
system is a tenant named `seller-<id>` and owns its seller user. Each job type
declares which of its payload fields hold such ids; the engine asks the guard
built here when a tenant's job is enqueued and again before every attempt.
System jobs that act on every store at once are registered with
`tenants=False`: the engine refuses them to every tenant.

A foreign id and one that does not exist get the same refusal, so a tenant
learns nothing about other tenants' data by probing.
"""

from __future__ import annotations

import asyncio
import enum
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import TableClause, column, select, table
from sqlalchemy.orm import Session, sessionmaker

from conveyor import TenantForbidden, TenantGuard

_TENANT = re.compile(r"(store|seller)-([1-9][0-9]{0,17})")


def store_tenant(store_id: int) -> str:
    return f"store-{store_id}"


def seller_tenant(user_id: int) -> str:
    return f"seller-{user_id}"


class Owned(enum.Enum):
    """What a payload id names, and so how its owner is found."""

    STORE = "store"
    ACCOUNT = "account"
    PRODUCT = "product"
    CAMPAIGN = "campaign"
    SHIPMENT = "shipment"
    SUPPLIER = "supplier"
    CONNECTION = "connection"
    SELLER_USER = "seller user"


def _rows_of_a_store(name: str) -> TableClause:
    # Bare table clauses, not the ORM models: the models' packages declare their jobs with these guards.
    return table(name, column("id"), column("store_id"))


_ACCOUNTS = _rows_of_a_store("marketplace_accounts")
_STORE_OF: dict[Owned, TableClause] = {
    Owned.ACCOUNT: _ACCOUNTS,
    Owned.PRODUCT: _rows_of_a_store("products"),
    Owned.CAMPAIGN: _rows_of_a_store("campaigns"),
    Owned.SUPPLIER: _rows_of_a_store("suppliers"),
    Owned.CONNECTION: _rows_of_a_store("store_akeneo_connections"),
}
"""Kinds whose rows carry their store's id."""
_SHIPMENTS = table("shipments", column("id"), column("account_id"))


class Ownership:
    """Builds tenant guards over one catalog database."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def guard(self, **fields: Owned) -> TenantGuard:
        """A guard checking that each named payload field (an id, or a list of ids) is the tenant's."""

        async def check(tenant: str, payload: Mapping[str, Any]) -> None:
            named = {n: (owned, payload[n]) for n, owned in fields.items() if payload.get(n) is not None}
            if named:
                await asyncio.to_thread(self._check, tenant, named)

        return check

    def _check(self, tenant: str, named: Mapping[str, tuple[Owned, Any]]) -> None:
        parsed = _TENANT.fullmatch(tenant)
        kind, own_id = (parsed.group(1), int(parsed.group(2))) if parsed else (None, None)
        with self._sessions() as session:
            for field, (owned, value) in named.items():
                ids = _ids(field, value)
                if kind == "seller":
                    mine = owned is Owned.SELLER_USER and set(ids) == {own_id}
                elif kind == "store" and owned is not Owned.SELLER_USER:
                    mine = _stores_of(session, owned, ids) == {own_id}
                else:
                    mine = False
                if not mine:
                    shown = value if len(ids) == 1 else f"{len(ids)} ids"
                    raise TenantForbidden(
                        f"tenant {tenant!r} does not own the {owned.value} that {field} names ({shown})"
                    )


def _ids(field: str, value: Any) -> list[int]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise TenantForbidden(f"{field} must be an id or a non-empty list of ids, got {value!r}")
    return values


def _stores_of(session: Session, owned: Owned, ids: list[int]) -> set[int | None]:
    """The stores owning `ids`; None among them if any id names no row at all."""
    wanted = set(ids)
    if owned is Owned.STORE:
        return set(wanted)
    if owned is Owned.SHIPMENT:
        query = (
            select(_SHIPMENTS.c.id, _ACCOUNTS.c.store_id)
            .join_from(_SHIPMENTS, _ACCOUNTS, _ACCOUNTS.c.id == _SHIPMENTS.c.account_id)
            .where(_SHIPMENTS.c.id.in_(wanted))
        )
    else:
        rows = _STORE_OF[owned]
        query = select(rows.c.id, rows.c.store_id).where(rows.c.id.in_(wanted))
    found: dict[int, int] = {row[0]: row[1] for row in session.execute(query)}
    return {found.get(i) for i in wanted}
