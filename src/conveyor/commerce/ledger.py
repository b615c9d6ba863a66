"""The delivery ledger: every product version reaches every target once per job kind.

A product's *version* moves on when the canonical JSON of its content (with its
variants and images) hashes differently. A *target* is one marketplace account.
A *delivery* row exists per (version, target, job kind) and is created the
moment a shipment claims that version, so the unique constraint on the triple is
the claim itself: two runs racing for the same products each get a disjoint
share, and nothing is decided by Python reading first and writing later.

A *shipment* is the set of versions bound to one job run (its `run_key`).
Creating it again with the same key returns the same shipment, so a retried
job resumes its own work; a shipment whose run died is found by
`unprocessed_shipments` once no live holder's lease covers it, and is claimed
by exactly one later run.

Every method is one transaction and returns plain values, so the ledger can be
called from any thread or process and needs no job engine.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Select,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload, sessionmaker

from conveyor import Clock, ConveyorError, SystemClock

from .catalog import MarketplaceAccount, Product, content_hash
from .db import Base, insert_ignoring_conflicts, rows_changed, string_enum


class LedgerError(ConveyorError):
    """A ledger call that names something that does not exist or is not the caller's."""


class Extractor(enum.StrEnum):
    """Which of a target's undelivered latest versions a job kind must act on."""

    INITIAL = "initial"
    """Products whose latest version is 1."""
    RE_RELEASE = "re_release"
    """Products whose latest version is above 1."""
    ALL = "all"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class ShipmentStatus(enum.StrEnum):
    OPEN = "open"
    PROCESSING = "processing"
    DONE = "done"


class ProductVersion(Base):
    __tablename__ = "product_versions"
    __table_args__ = (UniqueConstraint("product_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    number: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]

    product: Mapped[Product] = relationship()


class Shipment(Base):
    __tablename__ = "shipments"
    __table_args__ = (Index("ix_shipments_target_kind_status", "account_id", "job_kind", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_key: Mapped[str] = mapped_column(String(200), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("marketplace_accounts.id", ondelete="CASCADE"))
    job_kind: Mapped[str] = mapped_column(String(100))
    status: Mapped[ShipmentStatus] = mapped_column(string_enum(ShipmentStatus, "shipment_status"))
    holder: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("version_id", "account_id", "job_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("product_versions.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("marketplace_accounts.id", ondelete="CASCADE"))
    job_kind: Mapped[str] = mapped_column(String(100))
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"), index=True)
    status: Mapped[DeliveryStatus] = mapped_column(string_enum(DeliveryStatus, "delivery_status"))
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]


@dataclass(frozen=True)
class ShipmentItem:
    version_id: int
    product_id: int
    number: int
    content_hash: str
    status: DeliveryStatus
    error: str | None


@dataclass(frozen=True)
class ShipmentInfo:
    id: int
    run_key: str
    target: int
    job_kind: str
    status: ShipmentStatus
    holder: str | None
    created_at: datetime
    items: tuple[ShipmentItem, ...]

    @property
    def pending(self) -> tuple[ShipmentItem, ...]:
        """The items still to act on: what a resumed run must do."""
        return tuple(item for item in self.items if item.status is DeliveryStatus.PENDING)


class Ledger:
    """Versions, shipments and delivery records over a catalog database.

    `lease_seconds` is how long a claimed shipment stays with its holder
    without a renewing `claim`; after that another run may take it over.
    """

    def __init__(
        self, sessions: sessionmaker[Session], *, clock: Clock | None = None, lease_seconds: float = 300.0
    ) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()
        self._lease = timedelta(seconds=lease_seconds)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    def record_version(self, product_id: int) -> ProductVersion:
        """The product's version for its current content: the latest one if the hash is unchanged."""
        with self._sessions.begin() as session:
            if (version := self._record(session, [product_id]).get(product_id)) is None:
                raise LedgerError(f"no product {product_id}")
            return version

    def _latest(self, session: Session, product_ids: Select[Any] | list[int]) -> dict[int, ProductVersion]:
        newest = (
            select(ProductVersion.product_id, func.max(ProductVersion.number).label("number"))
            .where(ProductVersion.product_id.in_(product_ids))
            .group_by(ProductVersion.product_id)
            .subquery()
        )
        query = select(ProductVersion).join(
            newest,
            (ProductVersion.product_id == newest.c.product_id) & (ProductVersion.number == newest.c.number),
        )
        return {version.product_id: version for version in session.scalars(query)}

    def _record(self, session: Session, product_ids: Select[Any] | list[int]) -> dict[int, ProductVersion]:
        """Append a version for every product whose content hash moved, in product id order.

        A concurrent recorder may take the next number first: the unique
        (product, number) constraint turns that into a skipped insert, and the
        loop re-reads and either adopts its row (same content) or goes one higher.
        """
        query = select(Product).where(Product.id.in_(product_ids)).order_by(Product.id)
        products = session.scalars(
            query.options(selectinload(Product.variants), selectinload(Product.images))
        )
        latest = self._latest(session, product_ids)
        for product in products:
            digest = content_hash(product)
            current = latest.get(product.id)
            while current is None or current.content_hash != digest:
                row = {
                    "product_id": product.id,
                    "number": 1 if current is None else current.number + 1,
                    "content_hash": digest,
                    "created_at": self._now(),
                }
                insert_ignoring_conflicts(session, ProductVersion, [row], ("product_id", "number"))
                current = self._latest(session, [product.id]).get(product.id)
            latest[product.id] = current
        return latest

    def create_shipment(
        self,
        run_key: str,
        *,
        target: int,
        job_kind: str,
        extractor: Extractor | str,
        product_ids: Iterable[int] | None = None,
        limit: int | None = None,
    ) -> ShipmentInfo:
        """Bind what `extractor` selects for `target` to the run `run_key`, or return that run's shipment.

        Versions are recorded first, so an edited product is picked as its new
        version. Only `ready` products of the target's store are considered
        (narrowed to `product_ids` if given, e.g. a campaign's products); only
        each product's latest version counts, and only if no delivery row for
        it exists yet — a failed one included, so a failure is not retried
        until the product changes. An empty shipment is created already done.
        """
        extractor = Extractor(extractor)
        now = self._now()
        with self._sessions.begin() as session:
            account = session.get(MarketplaceAccount, target)
            if account is None:
                raise LedgerError(f"no marketplace account {target}")
            row = {
                "run_key": run_key,
                "account_id": target,
                "job_kind": job_kind,
                "status": ShipmentStatus.OPEN,
                "created_at": now,
                "updated_at": now,
            }
            created = insert_ignoring_conflicts(session, Shipment, [row], ("run_key",))
            if not created:
                return self._existing(session, run_key, target, job_kind)
            shipment_id = created[0]
            candidates = select(Product.id).where(
                Product.store_id == account.store_id, Product.ready.is_(True)
            )
            if product_ids is not None:
                candidates = candidates.where(Product.id.in_(list(product_ids)))
            latest = self._record(session, candidates)
            wanted = [
                v
                for v in latest.values()
                if extractor is Extractor.ALL or (v.number == 1) == (extractor is Extractor.INITIAL)
            ]
            settled = set(
                session.scalars(
                    select(Delivery.version_id).where(
                        Delivery.account_id == target,
                        Delivery.job_kind == job_kind,
                        Delivery.version_id.in_(
                            select(ProductVersion.id).where(ProductVersion.product_id.in_(candidates))
                        ),
                    )
                )
            )
            chosen = sorted(v.id for v in wanted if v.id not in settled)[:limit]
            claims = [
                {
                    "version_id": version_id,
                    "account_id": target,
                    "job_kind": job_kind,
                    "shipment_id": shipment_id,
                    "status": DeliveryStatus.PENDING,
                    "updated_at": now,
                }
                for version_id in chosen
            ]
            if not insert_ignoring_conflicts(
                session, Delivery, claims, ("version_id", "account_id", "job_kind")
            ):
                rows_changed(
                    session,
                    update(Shipment).where(Shipment.id == shipment_id).values(status=ShipmentStatus.DONE),
                )
            return self._info(session, shipment_id)

    def _existing(self, session: Session, run_key: str, target: int, job_kind: str) -> ShipmentInfo:
        shipment = session.scalars(select(Shipment).where(Shipment.run_key == run_key)).one()
        if (shipment.account_id, shipment.job_kind) != (target, job_kind):
            raise LedgerError(
                f"run {run_key!r} already shipped to account {shipment.account_id} as {shipment.job_kind!r}"
            )
        return self._info(session, shipment.id)

    def _info(self, session: Session, shipment_id: int) -> ShipmentInfo:
        session.expire_all()
        shipment = session.get(Shipment, shipment_id)
        if shipment is None:
            raise LedgerError(f"no shipment {shipment_id}")
        rows = session.execute(
            select(Delivery, ProductVersion)
            .join(ProductVersion, Delivery.version_id == ProductVersion.id)
            .where(Delivery.shipment_id == shipment_id)
            .order_by(ProductVersion.product_id)
        )
        items = tuple(
            ShipmentItem(v.id, v.product_id, v.number, v.content_hash, d.status, d.error) for d, v in rows
        )
        return ShipmentInfo(
            shipment.id,
            shipment.run_key,
            shipment.account_id,
            shipment.job_kind,
            shipment.status,
            shipment.holder,
            shipment.created_at,
            items,
        )

    def shipment(self, shipment_id: int) -> ShipmentInfo:
        with self._sessions.begin() as session:
            return self._info(session, shipment_id)

    def unprocessed_shipments(self, target: int, job_kind: str) -> list[ShipmentInfo]:
        """Shipments for `target` and `job_kind` not done and not held under a live lease, oldest first."""
        now = self._now()
        with self._sessions.begin() as session:
            ids = session.scalars(
                select(Shipment.id)
                .where(
                    Shipment.account_id == target,
                    Shipment.job_kind == job_kind,
                    Shipment.status != ShipmentStatus.DONE,
                    Shipment.holder.is_(None) | (Shipment.lease_expires_at < now),
                )
                .order_by(Shipment.created_at, Shipment.id)
            ).all()
            return [self._info(session, shipment_id) for shipment_id in ids]

    def claim(self, shipment_id: int, holder: str) -> ShipmentInfo | None:
        """Take (or renew) the right to process a shipment; None if another holder's lease is live.

        One conditional UPDATE: on PostgreSQL a racing claim re-checks the
        condition against the winner's row, on SQLite writers are serialised.
        """
        now = self._now()
        with self._sessions.begin() as session:
            claimed = rows_changed(
                session,
                update(Shipment)
                .where(
                    Shipment.id == shipment_id,
                    Shipment.status != ShipmentStatus.DONE,
                    Shipment.holder.is_(None)
                    | (Shipment.holder == holder)
                    | (Shipment.lease_expires_at < now),
                )
                .values(
                    status=ShipmentStatus.PROCESSING,
                    holder=holder,
                    lease_expires_at=now + self._lease,
                    updated_at=now,
                ),
            )
            return self._info(session, shipment_id) if claimed else None

    def mark_delivered(self, shipment_id: int, *version_ids: int) -> int:
        """Record that these versions reached the shipment's target; returns how many were still pending.

        A version already delivered (or failed) stays as it is, so repeating
        the call after a crash is harmless.
        """
        return self._settle(shipment_id, version_ids, DeliveryStatus.DELIVERED, None)

    def mark_failed(self, shipment_id: int, version_id: int, error: str) -> bool:
        """Record that a version was refused; it is not picked again by this job kind until it changes."""
        return self._settle(shipment_id, (version_id,), DeliveryStatus.FAILED, error) == 1

    def _settle(
        self, shipment_id: int, version_ids: Sequence[int], status: DeliveryStatus, error: str | None
    ) -> int:
        now = self._now()
        with self._sessions.begin() as session:
            known = set(
                session.scalars(
                    select(Delivery.version_id).where(
                        Delivery.shipment_id == shipment_id, Delivery.version_id.in_(version_ids)
                    )
                )
            )
            if missing := set(version_ids) - known:
                raise LedgerError(f"shipment {shipment_id} holds no versions {sorted(missing)}")
            return rows_changed(
                session,
                update(Delivery)
                .where(
                    Delivery.shipment_id == shipment_id,
                    Delivery.version_id.in_(version_ids),
                    Delivery.status == DeliveryStatus.PENDING,
                )
                .values(status=status, error=error, updated_at=now),
            )

    def finish(self, shipment_id: int, holder: str) -> ShipmentInfo:
        """Close a shipment its holder has processed; versions left pending are released for later runs."""
        now = self._now()
        with self._sessions.begin() as session:
            closed = rows_changed(
                session,
                update(Shipment)
                .where(
                    Shipment.id == shipment_id,
                    Shipment.holder == holder,
                    Shipment.status == ShipmentStatus.PROCESSING,
                )
                .values(status=ShipmentStatus.DONE, holder=None, lease_expires_at=None, updated_at=now),
            )
            if not closed:
                raise LedgerError(f"shipment {shipment_id} is not being processed by {holder!r}")
            rows_changed(
                session,
                delete(Delivery).where(
                    Delivery.shipment_id == shipment_id, Delivery.status == DeliveryStatus.PENDING
                ),
            )
            return self._info(session, shipment_id)
