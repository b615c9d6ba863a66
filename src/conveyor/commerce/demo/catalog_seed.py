"""A small store for the demo: products with variants and images, two marketplace accounts, a campaign.

Credentials never enter the catalog: accounts name environment variables
(`env:...`) that the demo sets for its worker processes.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal

from conveyor.commerce import db
from conveyor.commerce.catalog import (
    Campaign,
    CampaignProduct,
    Image,
    MarketplaceAccount,
    MarketplaceKind,
    Product,
    Store,
    Variant,
)
from conveyor.sandbox import JumpsellerSandbox, ShopifySandbox

JUMPSELLER_CREDENTIALS = "CONVEYOR_DEMO_JUMPSELLER"
SHOPIFY_CREDENTIALS = "CONVEYOR_DEMO_SHOPIFY"
NAMES = (
    "Blue Widget",
    "Oak Desk Lamp",
    "Linen Throw Pillow",
    "Ceramic Pour-Over Set",
    "Trail Running Shoe",
    "Merino Beanie",
    "Walnut Cutting Board",
    "Solar Garden Light",
)
INVALID = {"DEMO-NO-PRICE": "price", "DEMO-NO-STOCK": "stock"}
"""Two products the publish step must refuse, so the campaign ends partially published."""


def export_credentials(jumpseller: JumpsellerSandbox, shopify: ShopifySandbox) -> None:
    """Put the simulators' credentials where the accounts' references point; child processes inherit them."""
    os.environ[JUMPSELLER_CREDENTIALS] = json.dumps(
        {"login": jumpseller.config.login, "authtoken": jumpseller.config.authtoken}
    )
    os.environ[SHOPIFY_CREDENTIALS] = json.dumps({"access_token": shopify.config.access_token})


def seed_catalog(catalog_url: str, *, products: int, jumpseller_url: str, shopify_url: str) -> int:
    """Create the demo store; returns the id of its campaign (every product to both marketplaces)."""
    db.migrate(catalog_url)
    engine = db.create_engine_for(catalog_url)
    try:
        with db.session_factory(engine).begin() as session:
            store = Store(name="Acme Outdoor")
            accounts = [
                MarketplaceAccount(
                    kind=MarketplaceKind.JUMPSELLER,
                    name="Jumpseller",
                    credentials_ref=f"env:{JUMPSELLER_CREDENTIALS}",
                    settings={"base_url": jumpseller_url},
                ),
                MarketplaceAccount(
                    kind=MarketplaceKind.SHOPIFY,
                    name="Shopify",
                    credentials_ref=f"env:{SHOPIFY_CREDENTIALS}",
                    settings={"shop_url": shopify_url},
                ),
            ]
            store.accounts.extend(accounts)
            store.products.extend(_products(products))
            campaign = Campaign(name="Autumn launch")
            store.campaigns.append(campaign)
            session.add(store)
            session.flush()
            for product in store.products:
                for account in accounts:
                    campaign.items.append(CampaignProduct(product_id=product.id, account_id=account.id))
            session.flush()
            return campaign.id
    finally:
        engine.dispose()


def _products(count: int) -> list[Product]:
    made = [
        _product(f"DEMO-{n:04d}", f"{NAMES[n % len(NAMES)]} {n // len(NAMES) + 1}", Decimal("12.50") + n, 8)
        for n in range(max(0, count - len(INVALID)))
    ]
    made.append(_product("DEMO-NO-PRICE", "Unpriced Lantern", Decimal("0"), 4))
    made.append(_product("DEMO-NO-STOCK", "Oversold Tent", Decimal("129.00"), -2))
    return made


def _product(sku: str, name: str, price: Decimal, stock: int) -> Product:
    return Product(
        sku=sku,
        name=name,
        description=f"{name}, from the Conveyor demo store.",
        price=price,
        stock=stock,
        ready=True,
        variants=[
            Variant(sku=f"{sku}-S", price=None, stock=max(stock, 0) // 2, options={"Size": "S"}),
            Variant(sku=f"{sku}-L", price=price + 5, stock=max(stock, 0) // 2, options={"Size": "L"}),
        ],
        images=[Image(url=f"https://images.example/{sku}/{n}.jpg", position=n) for n in (1, 2)],
    )
