"""What a connector publishes (a `Listing`) and what it learns back (a `RemoteProduct`).

Every phase method takes the whole listing, so each marketplace picks what
it needs (eBay's item group wants the title again in the variants phase), and
returns the remote ids gathered so far, for the next phase or the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal


def _decimal(value: Decimal | float | str) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


@dataclass(frozen=True)
class Variant:
    sku: str
    price: Decimal
    stock: int = 0
    options: Mapping[str, str] = field(default_factory=dict)
    """Option name -> value, e.g. {"Color": "Red", "Size": "M"}; every variant names the same options."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "price", _decimal(self.price))


@dataclass(frozen=True)
class Image:
    url: str
    alt: str = ""


@dataclass(frozen=True)
class Listing:
    sku: str
    name: str
    price: Decimal
    stock: int = 0
    description: str = ""
    brand: str = ""
    active: bool = True
    currency: str = "USD"
    variants: tuple[Variant, ...] = ()
    images: tuple[Image, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "price", _decimal(self.price))

    def option_names(self) -> list[str]:
        return list(dict.fromkeys(name for v in self.variants for name in v.options))

    def option_values(self, name: str) -> list[str]:
        return list(dict.fromkeys(v.options[name] for v in self.variants if name in v.options))


@dataclass(frozen=True)
class RemoteProduct:
    product_id: str
    """The marketplace's id for the product (Jumpseller/Shopify id; the SKU on Amazon and eBay)."""
    variant_ids: Mapping[str, str] = field(default_factory=dict)
    """Variant SKU -> marketplace id."""
    image_ids: Mapping[str, str] = field(default_factory=dict)
    """Image URL -> marketplace id."""
    listing_id: str | None = None
    """Set where publishing creates a separate listing (eBay)."""
