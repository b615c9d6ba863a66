"""Catalog database: migrations, CRUD and the integrity rules, on SQLite and PostgreSQL.

PostgreSQL runs when `CONVEYOR_TEST_POSTGRES_URL` is set (and then must be
reachable) or when a server answers on 127.0.0.1:5432 (trust auth, database
`test`); otherwise the `[postgresql]` cases are not collected. Each case works
in a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

# Imported so Base.metadata holds every commerce system's tables, which the migrations must match.
import conveyor.commerce.seller_data.models
import conveyor.commerce.store_jobs.tables
import conveyor.commerce.suppliers.models  # noqa: F401
from conveyor.commerce import db
from conveyor.commerce.catalog import (
    Campaign,
    CampaignProduct,
    CampaignStatus,
    Image,
    MarketplaceAccount,
    MarketplaceKind,
    Product,
    ProductStatus,
    Store,
    Variant,
)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    db.migrate(database_url)
    engine = db.create_engine_for(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: sa.Engine) -> sessionmaker[Session]:
    return db.session_factory(engine)


def head_revisions() -> set[str]:
    """One head per commerce system's Alembic branch."""
    with db.create_engine_for("sqlite://").connect() as connection:
        return set(ScriptDirectory.from_config(db.alembic_config(connection)).get_heads())


def current_revisions(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def test_migrate_builds_an_empty_sqlite_file_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    url = f"sqlite:///{path}"
    db.migrate(url)
    engine = db.create_engine_for(url)
    with db.session_factory(engine).begin() as session:
        session.add(Store(name="kept"))
    db.migrate(url)  # second run: nothing to do, nothing lost
    assert current_revisions(engine) == head_revisions() != set()
    with db.session_factory(engine)() as session:
        assert session.scalars(sa.select(Store.name)).all() == ["kept"]
    engine.dispose()


def test_migrations_match_the_models(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.Base.metadata) == []
    assert current_revisions(engine) == head_revisions()


def test_concurrent_migrations_upgrade_once(database_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        barrier.wait()
        try:
            db.migrate(database_url)
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    engine = db.create_engine_for(database_url)
    with engine.connect() as connection:
        versions = connection.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one()
        assert versions == len(head_revisions())  # one row per branch head, each written once
    engine.dispose()


def add_store(session: Session, name: str = "shop") -> Store:
    store = Store(name=name)
    session.add(store)
    session.flush()
    return store


def test_catalog_round_trip(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        store = add_store(session)
        store.accounts.append(
            MarketplaceAccount(
                kind=MarketplaceKind.JUMPSELLER,
                name="main",
                credentials_ref="env:JUMPSELLER_TOKEN",
                settings={"requests_per_minute": 240},
            )
        )
        product = Product(
            sku="TEE-1",
            name="Tee",
            description="Cotton",
            price=Decimal("19.90"),
            stock=7,
            status=ProductStatus.ACTIVE,
            ready=True,
            variants=[
                Variant(sku="TEE-1-L", price=Decimal("21.50"), stock=2, options={"Size": "L"}),
                Variant(sku="TEE-1-M", stock=5, options={"Size": "M"}),
            ],
            images=[Image(url="https://img/2.jpg", position=2), Image(url="https://img/1.jpg", position=1)],
        )
        store.products.append(product)
        campaign = Campaign(name="spring", products_total=1)
        store.campaigns.append(campaign)
        session.flush()
        campaign.items.append(CampaignProduct(product=product, account=store.accounts[0]))
        store_id = store.id

    with sessions() as session:
        store = session.get_one(Store, store_id)
        (account,) = store.accounts
        assert (account.kind, account.credentials_ref) == (MarketplaceKind.JUMPSELLER, "env:JUMPSELLER_TOKEN")
        assert account.settings == {"requests_per_minute": 240}
        (product,) = store.products
        assert isinstance(product.price, Decimal)
        assert product.price == Decimal("19.90")
        assert (product.stock, product.status, product.ready) == (7, ProductStatus.ACTIVE, True)
        assert [(v.sku, v.price, v.options) for v in product.variants] == [
            ("TEE-1-L", Decimal("21.50"), {"Size": "L"}),
            ("TEE-1-M", None, {"Size": "M"}),
        ]
        assert [i.url for i in product.images] == ["https://img/1.jpg", "https://img/2.jpg"]
        assert product.created_at.tzinfo is UTC
        assert abs((datetime.now(UTC) - product.created_at).total_seconds()) < 60
        (campaign,) = store.campaigns
        assert campaign.status is CampaignStatus.DRAFT
        assert [(i.product.sku, i.account.name) for i in campaign.items] == [("TEE-1", "main")]

        account.settings["requests_per_second"] = 2  # in-place change of a JSON column is saved
        campaign.status = CampaignStatus.PARTIALLY_PUBLISHED
        session.commit()

    with sessions() as session:
        account = session.scalars(sa.select(MarketplaceAccount)).one()
        assert account.settings == {"requests_per_minute": 240, "requests_per_second": 2}
        assert session.scalars(sa.select(Campaign.status)).one() is CampaignStatus.PARTIALLY_PUBLISHED


def test_deleting_a_product_in_sql_cascades(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        store = add_store(session)
        store.products.append(
            Product(
                sku="A", name="A", price=Decimal(1), variants=[Variant(sku="A-1")], images=[Image(url="u")]
            )
        )
    with sessions.begin() as session:
        session.execute(sa.delete(Product))  # plain SQL: the database itself must cascade
    with sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Variant)) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(Image)) == 0


def test_sku_is_unique_per_store_only(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        first, second = add_store(session, "one"), add_store(session, "two")
        first.products.append(Product(sku="SKU", name="a", price=Decimal(1)))
        second.products.append(Product(sku="SKU", name="b", price=Decimal(1)))
        first_id = first.id
    with (
        pytest.raises(IntegrityError, match=r"uq_products_store_id_sku|products\.store_id, products\.sku"),
        sessions.begin() as session,
    ):
        session.add(Product(store_id=first_id, sku="SKU", name="c", price=Decimal(1)))


def insert_fails(sessions: sessionmaker[Session], table: str, row: dict[str, object]) -> None:
    """Assert that the database itself refuses `row`: reflected, the table carries no Python checks."""
    with sessions.begin() as session:
        reflected = sa.Table(table, sa.MetaData(), autoload_with=session.connection())
        with pytest.raises(IntegrityError), session.begin_nested():
            session.execute(reflected.insert().values(row))


def test_database_constraints(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        store = add_store(session)
        product = Product(
            sku="P", name="p", price=Decimal(1), variants=[Variant(sku="V")], images=[Image(url="u")]
        )
        account = MarketplaceAccount(
            kind=MarketplaceKind.SHOPIFY, name="s", credentials_ref="file:/run/s.json#a"
        )
        campaign = Campaign(name="c")
        store.products.append(product)
        store.accounts.append(account)
        store.campaigns.append(campaign)
        session.flush()
        campaign.items.append(CampaignProduct(product=product, account=account))
        ids = {"store": store.id, "product": product.id, "account": account.id, "campaign": campaign.id}

    now = datetime.now(UTC)
    product_row = {"store_id": ids["store"], "name": "x", "description": "", "price": 1, "stock": 0}
    product_row |= {"ready": False, "created_at": now, "updated_at": now}
    insert_fails(sessions, "products", product_row | {"sku": "NEW", "status": "sold_out"})
    insert_fails(sessions, "products", product_row | {"sku": "NEW", "status": "draft", "store_id": 999})
    insert_fails(sessions, "variants", {"product_id": ids["product"], "sku": "V", "stock": 0, "options": {}})
    insert_fails(sessions, "images", {"product_id": ids["product"], "url": "v", "position": 0})
    account_row = {"store_id": ids["store"], "kind": "ebay", "name": "e", "settings": {}, "created_at": now}
    insert_fails(sessions, "marketplace_accounts", account_row | {"credentials_ref": "sk_live_123"})
    insert_fails(sessions, "marketplace_accounts", account_row | {"credentials_ref": "env:X", "kind": "etsy"})
    insert_fails(
        sessions,
        "campaign_products",
        {"campaign_id": ids["campaign"], "product_id": ids["product"], "account_id": ids["account"]},
    )


def test_a_raw_secret_is_refused_before_it_reaches_the_database() -> None:
    with pytest.raises(ValueError, match="reference"):
        MarketplaceAccount(kind=MarketplaceKind.AMAZON, name="a", credentials_ref="Atzr|secret-token")


def test_postgres_urls_use_psycopg_3() -> None:
    assert db.normalize_url("postgresql://u:p%40ss@h/d") == "postgresql+psycopg://u:p%40ss@h/d"
    assert db.normalize_url("postgres://h/d") == "postgresql+psycopg://h/d"
    assert db.normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_naive_timestamps_are_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(sa.exc.StatementError, match="timezone-aware"), sessions.begin() as session:
        session.add(Store(name="s", created_at=datetime(2024, 1, 1)))
