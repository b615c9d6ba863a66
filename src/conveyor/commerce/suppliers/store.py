"""The sync's database work: suppliers, the batch hash check, family upserts, media records.

Every function is one short transaction and synchronous; the pipeline runs
them in a thread. Unique constraints (product SKU per store, family key per
supplier, source URL per supplier) decide races between concurrent jobs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from ..catalog import Image, Product, Variant
from ..db import insert_ignoring_conflicts, utcnow
from .grouping import Family
from .models import FamilyHash, Supplier, SupplierMedia

_IN_BATCH = 500  # values per IN (...): well under every driver's parameter limit


class UnknownSupplier(LookupError):
    """No active supplier with the id asked for."""


@dataclass(frozen=True)
class SupplierRef:
    id: int
    code: str
    store_id: int


@dataclass(frozen=True)
class StoredMedia:
    content_hash: str
    storage_key: str


@dataclass(frozen=True)
class ImageSlot:
    """A picture the family shows at `position`, and what the sync already knows of it."""

    url: str
    position: int
    known: StoredMedia | None


class SupplierStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def add_supplier(self, *, store_id: int, code: str, name: str) -> int:
        with self._sessions.begin() as session:
            supplier = Supplier(store_id=store_id, code=code, name=name)
            session.add(supplier)
            session.flush()
            return supplier.id

    def suppliers(self, supplier_id: int | None = None) -> list[SupplierRef]:
        """Active suppliers (or the one asked for, which must exist and be active)."""
        with self._sessions() as session:
            query = select(Supplier).where(Supplier.active.is_(True)).order_by(Supplier.id)
            if supplier_id is not None:
                query = query.where(Supplier.id == supplier_id)
            found = [SupplierRef(s.id, s.code, s.store_id) for s in session.scalars(query)]
        if supplier_id is not None and not found:
            raise UnknownSupplier(f"no active supplier with id {supplier_id}")
        return found

    def synced_hashes(self, supplier_id: int, keys: Sequence[str]) -> dict[str, str]:
        """The last synced hash of each of these families, in one query per 500 keys."""
        found: dict[str, str] = {}
        with self._sessions() as session:
            for start in range(0, len(keys), _IN_BATCH):
                rows = session.execute(
                    select(FamilyHash.family_key, FamilyHash.content_hash).where(
                        FamilyHash.supplier_id == supplier_id,
                        FamilyHash.family_key.in_(keys[start : start + _IN_BATCH]),
                    )
                )
                found.update({key: digest for key, digest in rows})
        return found

    def write_family(self, supplier: SupplierRef, family: Family) -> tuple[int, list[ImageSlot]]:
        """Create or update the product, its variants and its picture slots; return the product id.

        A slot whose URL changed loses its content hash until its picture is stored.
        """
        with self._sessions.begin() as session:
            product = session.scalars(
                select(Product).where(Product.store_id == supplier.store_id, Product.sku == family.sku)
            ).one_or_none()
            if product is None:
                product = Product(store_id=supplier.store_id, sku=family.sku)
                session.add(product)
            product.name = family.name
            product.description = family.description
            product.price = family.price
            _sync_variants(product, family)
            known = self._known(session, supplier.id, family.images)
            _sync_images(product, family, known)
            session.flush()
            slots = [ImageSlot(url, n, known.get(url)) for n, url in enumerate(family.images)]
            return product.id, slots

    def record_family(self, supplier_id: int, family: Family, product_id: int) -> None:
        """Remember the family's hash: the next sync skips it while the feed keeps that content."""
        with self._sessions.begin() as session:
            row = session.scalars(
                select(FamilyHash).where(
                    FamilyHash.supplier_id == supplier_id, FamilyHash.family_key == family.key
                )
            ).one_or_none()
            if row is None:
                session.add(
                    FamilyHash(
                        supplier_id=supplier_id,
                        family_key=family.key,
                        content_hash=family.content_hash(),
                        product_id=product_id,
                    )
                )
            else:
                row.content_hash = family.content_hash()
                row.product_id = product_id

    def finish_supplier(self, supplier_id: int) -> None:
        with self._sessions.begin() as session:
            session.execute(
                update(Supplier).where(Supplier.id == supplier_id).values(last_synced_at=utcnow())
            )

    def media(self, supplier_id: int, url: str) -> StoredMedia | None:
        with self._sessions() as session:
            return self._known(session, supplier_id, [url]).get(url)

    def record_media(
        self,
        *,
        supplier_id: int,
        url: str,
        media: StoredMedia,
        content_type: str,
        size: int,
        product_id: int,
        position: int,
    ) -> None:
        """Keep the stored picture and mark the product's slot as holding it (if the slot still shows it)."""
        row = {
            "supplier_id": supplier_id,
            "source_url": url,
            "content_hash": media.content_hash,
            "storage_key": media.storage_key,
            "content_type": content_type,
            "size": size,
            "created_at": utcnow(),
        }
        with self._sessions.begin() as session:
            insert_ignoring_conflicts(session, SupplierMedia, [row], key=("supplier_id", "source_url"))
            _fill_slot(session, product_id, position, url, media.content_hash)

    def fill_slot(self, *, product_id: int, position: int, url: str, content_hash: str) -> None:
        """Give a product's picture slot the hash of a picture stored earlier."""
        with self._sessions.begin() as session:
            _fill_slot(session, product_id, position, url, content_hash)

    @staticmethod
    def _known(session: Session, supplier_id: int, urls: Sequence[str]) -> dict[str, StoredMedia]:
        found: dict[str, StoredMedia] = {}
        for start in range(0, len(urls), _IN_BATCH):
            rows = session.scalars(
                select(SupplierMedia).where(
                    SupplierMedia.supplier_id == supplier_id,
                    SupplierMedia.source_url.in_(urls[start : start + _IN_BATCH]),
                )
            )
            found.update({m.source_url: StoredMedia(m.content_hash, m.storage_key) for m in rows})
        return found


def _fill_slot(session: Session, product_id: int, position: int, url: str, content_hash: str) -> None:
    """Only while the slot still shows `url`: a newer family write may have moved it on."""
    session.execute(
        update(Image)
        .where(Image.product_id == product_id, Image.position == position, Image.url == url)
        .values(content_hash=content_hash)
    )


def _sync_variants(product: Product, family: Family) -> None:
    current = {variant.sku: variant for variant in product.variants}
    wanted = {variant.sku for variant in family.variants}
    for sku, variant in current.items():
        if sku not in wanted:
            product.variants.remove(variant)
    for data in family.variants:
        variant = current.get(data.sku) or Variant(sku=data.sku)
        if variant.product is None:
            product.variants.append(variant)
        variant.price = data.price
        variant.options = dict(data.options)


def _sync_images(product: Product, family: Family, known: dict[str, StoredMedia]) -> None:
    slots = {image.position: image for image in product.images}
    for position, image in slots.items():
        if position >= len(family.images):
            product.images.remove(image)
    for position, url in enumerate(family.images):
        image = slots.get(position) or Image(position=position)
        if image.product is None:
            product.images.append(image)
        image.url = url
        media = known.get(url)
        image.content_hash = media.content_hash if media else None
