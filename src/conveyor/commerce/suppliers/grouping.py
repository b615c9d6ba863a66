"""From product files to product families: the family key, the catalog-shaped family, its content hash.

The seed grouped variants by `a_number`. In the feed as observed, `ANumber`
carries the supplier code (the same on every product of a supplier), so
grouping by it would fold a whole supplier into one product; the family is
the product file, identified by the parent's `Sku`. Both keys are offered,
`FamilyKey.SKU` is the default, and files sharing a key merge into one family.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Sequence
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from .feed import BadFile, FeedDetails, FeedItem, FeedProduct, IndexEntry


class FamilyKey(enum.StrEnum):
    SKU = "sku"
    """The parent record's `Sku` (= the product file): one family per file, as the feed ships them."""
    A_NUMBER = "a_number"
    """The parent's `ANumber`: the seed's key; on the observed feed it is the supplier code."""


class VariantData(BaseModel):
    model_config = ConfigDict(frozen=True)

    sku: str
    name: str
    price: Decimal | None
    options: dict[str, str]
    images: list[str]


class Family(BaseModel):
    """One product and its variants, as the catalog will hold them; travels as a family job's payload."""

    model_config = ConfigDict(frozen=True)

    key: str
    sku: str
    name: str
    description: str
    category: str | None
    price: Decimal
    variants: list[VariantData]
    images: list[str]
    """Every picture of the family once, in catalog position order."""

    def content_hash(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()

    def image_owner(self, url: str) -> str | None:
        """The first variant showing this picture (None for a picture only the parent shows)."""
        return next((v.sku for v in self.variants if url in v.images), None)


def family_key(product: FeedProduct, key: FamilyKey, entry: IndexEntry) -> str:
    value = product.sku if key is FamilyKey.SKU else product.a_number
    if not value:
        raise BadFile(f"{entry.supplier}/{entry.name}: no {key.value} to group by")
    return value


def group_families(
    products: Iterable[tuple[IndexEntry, FeedProduct]],
    *,
    key: FamilyKey,
    language: str,
    region: str | None,
) -> tuple[list[Family], list[BadFile]]:
    """Families ordered by key; files that cannot be keyed come back as errors."""
    groups: dict[str, list[FeedProduct]] = {}
    errors: list[BadFile] = []
    for entry, product in products:
        try:
            groups.setdefault(family_key(product, key, entry), []).append(product)
        except BadFile as e:
            errors.append(e)
    families = [_family(k, files, language, region) for k, files in sorted(groups.items())]
    return families, errors


def _family(key: str, files: Sequence[FeedProduct], language: str, region: str | None) -> Family:
    parent = files[0]
    variants: dict[str, VariantData] = {}
    images: list[str] = []
    for product in files:
        images.extend(_images(_details(product, language)))
        for item in product.children or [product]:
            variant = _variant(item, language, region)
            variants.setdefault(variant.sku, variant)
            images.extend(variant.images)
    ordered = sorted(variants.values(), key=lambda v: v.sku)
    prices = [v.price for v in ordered if v.price is not None]
    details = _details(parent, language)
    return Family(
        key=key,
        sku=parent.sku if len(files) == 1 else key,
        name=details.name or parent.sku,
        description=details.description or "",
        category=parent.general.category if parent.general else None,
        price=min(prices, default=Decimal("0.00")),
        variants=ordered,
        images=list(dict.fromkeys(images)),
    )


def _variant(item: FeedItem, language: str, region: str | None) -> VariantData:
    details = _details(item, language)
    return VariantData(
        sku=item.sku,
        name=details.name or item.sku,
        price=_unit_price(item, region),
        options={f.name: f.value for f in details.configuration if f.value is not None},
        images=_images(details),
    )


def _details(item: FeedItem, language: str) -> FeedDetails:
    """The wanted language's texts, else the first language the item has."""
    if language in item.details:
        return item.details[language]
    return next(iter(item.details.values()), FeedDetails())


def _images(details: FeedDetails) -> list[str]:
    urls = [details.image.url] if details.image else []
    return list(dict.fromkeys(urls + [image.url for image in details.gallery]))


def _unit_price(item: FeedItem, region: str | None) -> Decimal | None:
    """The selling price for the smallest quantity, in `region` (or the first region listed)."""
    prices = item.prices.get(region) if region else None
    if prices is None:
        prices = next(iter(item.prices.values()), None)
    if prices is None or not prices.selling:
        return None
    tier = min(prices.selling, key=lambda t: t.quantity)
    return Decimal(str(tier.price)).quantize(Decimal("0.01"))
