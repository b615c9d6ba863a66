"""The Promidata simulator's catalogue: product files, images and categories, derived from a seed.

Nothing is stored but one revision number per product family: every file and
image is rebuilt from (seed, supplier, family index, revision) when asked for,
so a catalogue of any size costs no memory, the same seed always serves the
same bytes, and bumping a revision is the one way content (and so its hash)
changes.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

COLOURS = ("Black", "White", "Red", "Navy", "Green", "Orange", "Grey", "Yellow")
SIZES = ("XS", "S", "M", "L", "XL", "XXL")
CATEGORIES = (
    ("BAGS", "Bags", ""),
    ("BAGS/SHOPPING_BAGS", "Shopping bags", "BAGS"),
    ("DRINKWARE", "Drinkware", ""),
    ("DRINKWARE/MUGS", "Mugs", "DRINKWARE"),
    ("TEXTILE", "Textile", ""),
    ("TEXTILE/T_SHIRTS", "T-shirts", "TEXTILE"),
)
FIRST_SUPPLIER_SKU = 100_000


@dataclass(frozen=True)
class FamilyRef:
    """Where one product family lives: its supplier folder and its position in that folder."""

    supplier: str
    index: int

    @property
    def sku(self) -> str:
        return f"{self.supplier}-{FIRST_SUPPLIER_SKU + self.index}"


@dataclass
class PromidataCatalog:
    """The feed's content: which families exist, their revisions, and the faults a test planted."""

    seed: int
    suppliers: tuple[str, ...]
    families: int
    variants_per_family: int
    images_per_variant: int
    languages: tuple[str, ...]
    regions: tuple[str, ...]
    image_bytes: int
    revisions: dict[str, int] = field(default_factory=dict)
    image_revisions: dict[str, int] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    """Family SKUs listed in Import.txt whose file answers 404."""
    truncated: set[str] = field(default_factory=set)
    """Family SKUs whose file is served cut in half (invalid JSON)."""
    missing_images: set[str] = field(default_factory=set)
    """Picture file names still referenced by their product file but answering 404."""

    def refs(self) -> list[FamilyRef]:
        return [FamilyRef(s, i) for s in self.suppliers for i in range(self.families)]

    def ref(self, supplier: str, sku: str) -> FamilyRef | None:
        if supplier not in self.suppliers or not sku.startswith(f"{supplier}-"):
            return None
        number = sku.removeprefix(f"{supplier}-")
        if not number.isdigit():
            return None
        index = int(number) - FIRST_SUPPLIER_SKU
        return FamilyRef(supplier, index) if 0 <= index < self.families else None

    def change(self, skus: list[str], *, images: bool) -> None:
        """New content for these families; with `images`, their first picture is replaced too."""
        for sku in skus:
            self.revisions[sku] = self.revisions.get(sku, 0) + 1
            if images:
                self.image_revisions[sku] = self.image_revisions.get(sku, 0) + 1

    # -- product files ------------------------------------------------------------------------

    def product_file(self, ref: FamilyRef, images_base: str) -> bytes:
        return json.dumps(self._product(ref, images_base), ensure_ascii=False, indent=1).encode()

    def _product(self, ref: FamilyRef, images_base: str) -> dict[str, Any]:
        revision = self.revisions.get(ref.sku, 0)
        rng = random.Random(f"{self.seed}:{ref.sku}:{revision}")
        category = CATEGORIES[rng.randrange(1, len(CATEGORIES), 2)][0]
        base_price = rng.randint(150, 4000) / 100
        single = self.variants_per_family == 1
        children = [
            self._child(ref, n, single, base_price, images_base, rng) for n in range(self.variants_per_family)
        ]
        first_image = children[0]["ProductDetails"][self.languages[0]]["Image"]
        title = f"{rng.choice(('Eco', 'Classic', 'Premium', 'Sport'))} item {ref.index}"
        if revision:
            title += f" (rev {revision})"
        return {
            "ANumber": ref.supplier,
            "Sku": ref.sku,
            "SupplierSku": str(FIRST_SUPPLIER_SKU + ref.index),
            "Ean": _ean(self.seed, ref.sku),
            "ChildProducts": children,
            "ProductDetails": {lang: self._details(lang, title, first_image, []) for lang in self.languages},
            "NonLanguageDependedProductDetails": {
                "SearchColor": "Undefined",
                "HexColor": None,
                "Category": category,
                "Brand": f"Brand {ref.supplier}",
                "Weight": rng.randint(20, 900),
                "CountryOfOrigin": "CN",
            },
            "Errors": [],
            "Warnings": [],
            "ChildHasErrors": False,
        }

    def _child(
        self, ref: FamilyRef, n: int, single: bool, base_price: float, images_base: str, rng: random.Random
    ) -> dict[str, Any]:
        colour = COLOURS[n % len(COLOURS)]
        size = SIZES[(n // len(COLOURS)) % len(SIZES)]
        sku = ref.sku if single else f"{ref.sku}-{n + 1:03d}"
        urls = [self._image_url(ref, n, m, images_base) for m in range(self.images_per_variant)]
        image = _image_entry(urls[0]) if urls else None
        gallery = [_image_entry(url) for url in urls[1:]]
        fields = [] if single else [("Color", colour), ("Size", size)]
        title = f"{ref.sku} {colour} {size}"
        price = round(base_price + n * 0.25, 2)
        return {
            "ANumber": ref.supplier,
            "Sku": sku,
            "SupplierSku": sku.removeprefix(f"{ref.supplier}-"),
            "Ean": _ean(self.seed, sku),
            "ProductDetails": {
                lang: self._details(lang, title, image, gallery, fields) for lang in self.languages
            },
            "NonLanguageDependedProductDetails": {"SearchColor": colour, "HexColor": None},
            "ProductPriceCountryBased": {region: _prices(price) for region in self.regions},
        }

    def _details(
        self,
        lang: str,
        title: str,
        image: dict[str, str] | None,
        gallery: list[dict[str, str]],
        fields: list[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        return {
            "Name": f"{title} [{lang}]",
            "Description": f"{title}: description in {lang}.",
            "ShortDescription": title,
            "Image": image,
            "MediaGalleryImages": gallery,
            "IsActive": True,
            "ConfigurationFields": [
                {"ConfigurationName": name, "ConfigurationNameTranslated": name, "ConfigurationValue": value}
                for name, value in fields or []
            ],
        }

    # -- images ------------------------------------------------------------------------------

    def _image_url(self, ref: FamilyRef, variant: int, number: int, images_base: str) -> str:
        return f"{images_base}/{ref.supplier}/{self.image_name(ref, variant, number)}"

    def image_name(self, ref: FamilyRef, variant: int, number: int) -> str:
        name = f"{ref.sku}-{variant + 1:03d}-{number + 1}"
        revision = self.image_revisions.get(ref.sku, 0) if (variant, number) == (0, 0) else 0
        return f"{name}-r{revision}.jpg" if revision else f"{name}.jpg"

    def image_names(self, ref: FamilyRef) -> list[str]:
        return [
            self.image_name(ref, v, m)
            for v in range(self.variants_per_family)
            for m in range(self.images_per_variant)
        ]

    def image(self, supplier: str, name: str) -> bytes | None:
        """The picture's bytes if `name` is one of the current images of a family of `supplier`."""
        sku = "-".join(name.split("-")[:2])
        ref = self.ref(supplier, sku)
        if ref is None or name in self.missing_images or name not in self.image_names(ref):
            return None
        return _jpeg(f"{self.seed}:{supplier}/{name}", self.image_bytes)

    # -- index -------------------------------------------------------------------------------

    def categories_csv(self) -> bytes:
        rows = ["code;name;parent_code"] + [";".join(row) for row in CATEGORIES]
        return ("\n".join(rows) + "\n").encode()


def _image_entry(url: str) -> dict[str, str]:
    return {"Url": url, "Description": "", "FileName": url.rsplit("/", 1)[-1]}


def _prices(price: float) -> dict[str, Any]:
    tiers = [(1, price), (100, round(price * 0.97, 2)), (500, round(price * 0.93, 2))]
    return {
        "RecommendedSellingPrice": [
            {"Price": p, "Quantity": q, "OnRequest": False, "Valuta": "EURO"} for q, p in tiers
        ],
        "GeneralBuyingPrice": [
            {"Price": round(p * 0.6, 2), "Quantity": q, "OnRequest": False, "Valuta": "EURO"}
            for q, p in tiers
        ],
        "QuantityIncrements": 1,
        "VatPercentage": 21,
        "MinimumOrderQuantity": 1,
    }


def _ean(seed: int, sku: str) -> str:
    digits = str(int(hashlib.sha256(f"{seed}:{sku}".encode()).hexdigest(), 16))[:12]
    check = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    return digits + str(check)


def _jpeg(key: str, size: int) -> bytes:
    """JPEG start/end markers around deterministic filler: enough for content hashing and storage."""
    body = bytearray()
    block = hashlib.sha256(key.encode()).digest()
    while len(body) < size:
        body += block
        block = hashlib.sha256(block).digest()
    return b"\xff\xd8\xff\xe0" + bytes(body[:size]) + b"\xff\xd9"
