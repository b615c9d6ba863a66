"""Every commerce job type, held to its tenant: another store's (or no one's) id is refused, with no job.

The table below names a payload for every job type the pipelines register,
built from one store's ids; a test fails when a type is added without a row.
Each id field is then swapped, one at a time, for the other store's id (and
for an id that exists nowhere): through Python with a tenant and through the
HTTP API with a tenant's write token, each is refused (403) and stores nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from conveyor import Conveyor, FakeClock, JobFilter, JobOptions, JobState, TenantForbidden
from conveyor.api import AuthConfig, Scope, TokenStore, create_api
from conveyor.commerce import db
from conveyor.commerce import suppliers as supplier_sync
from conveyor.commerce.catalog import Campaign, MarketplaceAccount, MarketplaceKind, Product, Store
from conveyor.commerce.ledger import Shipment, ShipmentStatus
from conveyor.commerce.pipelines import register as register_campaigns
from conveyor.commerce.seller_data import register as register_seller_data
from conveyor.commerce.seller_data.models import SellerUser
from conveyor.commerce.store_jobs import register as register_store_jobs
from conveyor.commerce.store_jobs.providers import AISettings
from conveyor.commerce.store_jobs.tables import AkeneoConnection, UiLabel
from conveyor.commerce.suppliers.models import Supplier
from conveyor.commerce.tenancy import seller_tenant, store_tenant

NOWHERE = 987_654
"""An id that no row has: refused exactly like another tenant's."""


@dataclass(frozen=True)
class StoreIds:
    store_id: int
    account_id: int
    product_id: int
    campaign_id: int
    shipment_id: int
    supplier_id: int
    connection_id: int
    seller_user: int


def _one_store(session: sa.orm.Session, n: int) -> StoreIds:
    store = Store(name=f"Store {n}")
    session.add(store)
    session.flush()
    account = MarketplaceAccount(
        store=store, kind=MarketplaceKind.SHOPIFY, name=f"shop {n}", credentials_ref=f"env:SHOP_{n}"
    )
    product = Product(store=store, sku=f"SKU-{n}", name=f"Product {n}", price=Decimal("9.90"))
    campaign = Campaign(store=store, name=f"Campaign {n}")
    supplier = Supplier(store_id=store.id, code=f"A{n}", name=f"Supplier {n}")
    connection = AkeneoConnection(
        store_id=store.id, base_url="http://127.0.0.1:9", credentials_ref=f"env:AK_{n}"
    )
    seller = SellerUser(name=f"Seller {n}")
    session.add_all([account, product, campaign, supplier, connection, seller])
    session.flush()
    now = datetime.now(UTC)
    shipment = Shipment(
        run_key=f"run-{n}",
        account_id=account.id,
        job_kind="campaign",
        status=ShipmentStatus.OPEN,
        holder=None,
        lease_expires_at=None,
        created_at=now,
        updated_at=now,
    )
    session.add(shipment)
    session.flush()
    return StoreIds(
        store.id, account.id, product.id, campaign.id, shipment.id, supplier.id, connection.id, seller.id
    )


@pytest.fixture
def catalog(tmp_path: Path) -> tuple[str, StoreIds, StoreIds]:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    db.migrate(url)
    engine = db.create_engine_for(url)
    with db.session_factory(engine).begin() as session:
        mine, theirs = _one_store(session, 1), _one_store(session, 2)
    engine.dispose()
    return url, mine, theirs


@pytest.fixture
async def app(tmp_path: Path, catalog: tuple[str, StoreIds, StoreIds]) -> AsyncIterator[Conveyor]:
    url = catalog[0]
    app = Conveyor(f"sqlite:///{tmp_path / 'jobs.db'}", clock=FakeClock())
    register_campaigns(app, catalog_url=url)
    supplier_sync.register(app, catalog_url=url, feed_url="http://127.0.0.1:9/feed")
    register_store_jobs(app, catalog_url=url, ai=AISettings(credentials_ref="env:NO_AI"))
    register_seller_data(app, catalog_url=url)
    yield app
    await app.close()


Payload = Callable[[StoreIds], dict[str, Any]]
OPERATOR_ONLY = "operator only"

# job type -> (the tenant it runs for, its payload from that tenant's ids), or OPERATOR_ONLY.
TABLE: dict[str, tuple[Callable[[StoreIds], str], Payload] | str] = {}


def _store(payload: Payload) -> tuple[Callable[[StoreIds], str], Payload]:
    return (lambda ids: store_tenant(ids.store_id)), payload


def _export(i: StoreIds) -> dict[str, Any]:
    return {"store_id": i.store_id, "account_id": i.account_id, "product_ids": [i.product_id]}


def _phase(i: StoreIds) -> dict[str, Any]:
    return {
        "account_id": i.account_id,
        "shipment_id": i.shipment_id,
        "products": [i.product_id],
        "remote": {},
    }


TABLE.update(
    {
        "translation:ui-labels:bulk": _store(lambda i: {"store_id": i.store_id, "target_language": "de"}),
        "amazon:export:products": _store(_export),
        "ebay:export:products": _store(_export),
        **{
            f"shopify:import:{what}": _store(lambda i: {"store_id": i.store_id, "account_id": i.account_id})
            for what in ("collections", "products", "all")
        },
        **{
            f"akeneo:import:{what}": _store(
                lambda i: {"store_id": i.store_id, "connection_id": i.connection_id}
            )
            for what in ("products", "categories")
        },
        "campaign:process": _store(lambda i: {"campaign_id": i.campaign_id}),
        "campaign:marketplace": _store(
            lambda i: {
                "campaign_id": i.campaign_id,
                "account_id": i.account_id,
                "product_ids": [i.product_id],
            }
        ),
        "campaign:publish": _store(
            lambda i: {
                "campaign_id": i.campaign_id,
                "account_id": i.account_id,
                "key": "k",
                "items": [i.product_id],
            }
        ),
        "campaign:optimized": _store(
            lambda i: {
                "campaign_id": i.campaign_id,
                "account_id": i.account_id,
                "key": "k",
                "shipment_id": i.shipment_id,
            }
        ),
        "campaign:batch": _store(
            lambda i: {
                "campaign_id": i.campaign_id,
                "account_id": i.account_id,
                "key": "k",
                "shipment_id": i.shipment_id,
                "items": [i.product_id],
            }
        ),
        **{f"publish:{phase}": _store(_phase) for phase in ("product_data", "variants", "images")},
        "suppliers:sync": _store(lambda i: {"supplier_id": i.supplier_id}),
        "suppliers:family": _store(
            lambda i: {"supplier_id": i.supplier_id, "supplier": "A1", "store_id": i.store_id, "data": {}}
        ),
        "suppliers:image": _store(
            lambda i: {
                "supplier_id": i.supplier_id,
                "product_id": i.product_id,
                "url": "http://x/",
                "position": 1,
            }
        ),
        "seller_data:process_user_data": (
            lambda ids: seller_tenant(ids.seller_user),
            lambda i: {"user_id": i.seller_user},
        ),
        "system:daily_credit_deduction": OPERATOR_ONLY,
        "system:cleanup": OPERATOR_ONLY,
        "seller_data:enqueue_due_users": OPERATOR_ONLY,
    }
)
NO_IDS = {"publish:tally"}
"""Types whose payload names nothing a tenant owns."""

ID_FIELDS = {
    "store_id": "store_id",
    "account_id": "account_id",
    "product_ids": "product_id",
    "items": "product_id",
    "products": "product_id",
    "product_id": "product_id",
    "campaign_id": "campaign_id",
    "shipment_id": "shipment_id",
    "supplier_id": "supplier_id",
    "connection_id": "connection_id",
    "user_id": "seller_user",
}
"""Payload field -> the StoreIds attribute it holds."""


def swapped_cases() -> Iterator[tuple[str, str]]:
    """(job type, id field) for every id field of every guarded row of the table."""
    fake = StoreIds(*range(1, 9))
    for name, row in TABLE.items():
        if row == OPERATOR_ONLY:
            continue
        assert not isinstance(row, str)
        for field in row[1](fake):
            if field in ID_FIELDS:
                yield name, field


def foreign_payload(name: str, field: str, mine: StoreIds, other: Any) -> tuple[str, dict[str, Any]]:
    row = TABLE[name]
    assert not isinstance(row, str)
    tenant, payload = row[0](mine), row[1](mine)
    payload[field] = [other] if isinstance(payload[field], list) else other
    return tenant, payload


def other_id(field: str, theirs: StoreIds) -> int:
    value: int = getattr(theirs, ID_FIELDS[field])
    return value


async def test_the_table_covers_every_registered_job_type(app: Conveyor) -> None:
    assert set(app.job_types) == set(TABLE) | NO_IDS


@pytest.mark.parametrize(("name", "field"), list(swapped_cases()))
async def test_another_stores_id_in_any_field_is_refused_through_python(
    app: Conveyor, catalog: tuple[str, StoreIds, StoreIds], name: str, field: str
) -> None:
    _, mine, theirs = catalog
    for other in (other_id(field, theirs), NOWHERE):
        tenant, payload = foreign_payload(name, field, mine, other)
        with pytest.raises(TenantForbidden, match=f"does not own the .* that {field} names"):
            await app.enqueue(name, payload, JobOptions(tenant=tenant))
    assert (await app.list_jobs(JobFilter())).jobs == []


async def test_every_type_takes_the_tenants_own_ids_and_operator_only_types_refuse_tenants(
    app: Conveyor, catalog: tuple[str, StoreIds, StoreIds]
) -> None:
    _, mine, _ = catalog
    for name, row in TABLE.items():
        if row == OPERATOR_ONLY:
            with pytest.raises(TenantForbidden, match="it is for operators only"):
                await app.enqueue(name, {}, JobOptions(tenant=store_tenant(mine.store_id)))
            continue
        assert not isinstance(row, str)
        job = await app.enqueue(name, row[1](mine), JobOptions(tenant=row[0](mine)))
        assert job.state is JobState.PENDING, name


async def test_a_store_tenant_may_not_name_a_seller_and_a_seller_may_not_name_a_store(
    app: Conveyor, catalog: tuple[str, StoreIds, StoreIds]
) -> None:
    _, mine, _ = catalog
    with pytest.raises(TenantForbidden, match="does not own the seller user"):
        await app.enqueue(
            "seller_data:process_user_data",
            {"user_id": mine.seller_user},
            JobOptions(tenant=store_tenant(mine.store_id)),
        )
    with pytest.raises(TenantForbidden, match="does not own the store"):
        await app.enqueue(
            "translation:ui-labels:bulk",
            {"store_id": mine.store_id, "target_language": "de"},
            JobOptions(tenant=seller_tenant(mine.seller_user)),
        )
    with pytest.raises(TenantForbidden, match="does not own the store"):
        await app.enqueue(
            "translation:ui-labels:bulk",
            {"store_id": mine.store_id, "target_language": "de"},
            JobOptions(tenant="acme"),  # a tenant of no recognised shape owns nothing in the catalog
        )


@pytest.fixture
async def tenant_client(app: Conveyor, tmp_path: Path) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    tokens = TokenStore(tmp_path / "auth.db")
    api = create_api(app, auth=AuthConfig(tokens=tokens))
    clients: list[httpx.AsyncClient] = []

    def make(tenant: str) -> httpx.AsyncClient:
        token = tokens.create(scope=Scope.WRITE, tenant=tenant)[1]
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(api, client=("127.0.0.1", 50000)),
            base_url="http://conveyor.test",
            headers={"Authorization": f"Bearer {token}"},
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def test_over_the_api_every_foreign_id_is_403_and_no_job(
    app: Conveyor,
    catalog: tuple[str, StoreIds, StoreIds],
    tenant_client: Callable[[str], httpx.AsyncClient],
) -> None:
    _, mine, theirs = catalog
    clients: dict[str, httpx.AsyncClient] = {}
    refused = 0
    for name, field in swapped_cases():
        tenant, payload = foreign_payload(name, field, mine, other_id(field, theirs))
        client = clients.setdefault(tenant, tenant_client(tenant))
        response = await client.post("/api/jobs", json={"type": name, "payload": payload})
        assert response.status_code == 403, (name, field, response.text)
        assert f"that {field} names" in response.json()["detail"]
        refused += 1
    for name, row in TABLE.items():
        if row == OPERATOR_ONLY:
            client = clients.setdefault(
                store_tenant(mine.store_id), tenant_client(store_tenant(mine.store_id))
            )
            response = await client.post("/api/jobs", json={"type": name, "payload": {}})
            assert response.status_code == 422, (name, response.text)  # not even shown to tenants
            assert response.json()["detail"].startswith(f"unknown job type {name!r}")
            assert name not in response.json()["detail"].partition("(")[2]
            refused += 1
    assert refused > len(TABLE)
    assert (await app.list_jobs(JobFilter())).jobs == []


async def test_the_reported_attack_is_refused_before_any_job_exists(
    app: Conveyor, catalog: tuple[str, StoreIds, StoreIds], tenant_client: Callable[[str], httpx.AsyncClient]
) -> None:
    """Store 2's write token asking for a translation of store 1's labels: 403, nothing runs."""
    url, mine, theirs = catalog
    attacker = tenant_client(store_tenant(theirs.store_id))
    labels = {"store_id": mine.store_id, "target_language": "de"}
    body = {"type": "translation:ui-labels:bulk", "payload": labels}
    response = await attacker.post("/api/jobs", json=body)
    assert response.status_code == 403
    owner, victim = store_tenant(theirs.store_id), mine.store_id
    said = f"tenant {owner!r} does not own the store that store_id names ({victim})"
    assert response.json() == {"detail": said}
    summary = await app.worker(burst=True).run()
    assert summary.processed == 0
    assert (await app.list_jobs(JobFilter())).jobs == []
    engine = db.create_engine_for(url)
    with engine.connect() as connection:
        written = connection.execute(sa.select(sa.func.count()).select_from(UiLabel)).scalar_one()
    engine.dispose()
    assert written == 0


async def test_an_account_moved_to_another_store_fails_its_waiting_job_at_run_time(
    app: Conveyor, catalog: tuple[str, StoreIds, StoreIds]
) -> None:
    url, mine, theirs = catalog
    job = await app.enqueue(
        "shopify:import:products",
        {"store_id": mine.store_id, "account_id": mine.account_id},
        JobOptions(tenant=store_tenant(mine.store_id)),
    )
    engine = db.create_engine_for(url)
    with engine.begin() as connection:
        connection.execute(
            sa.update(MarketplaceAccount)
            .where(MarketplaceAccount.id == mine.account_id)
            .values(store_id=theirs.store_id)
        )
    engine.dispose()
    await app.worker(burst=True, queues=["store"]).run()
    done = await app.get_job(job.id)
    assert done.state is JobState.FAILED
    assert done.attempts == 1
    assert done.error is not None
    assert done.error.type == "TenantForbidden"
    assert "does not own the account that account_id names" in done.error.message
