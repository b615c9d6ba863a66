"""Seller-data tables: users, their Amazon seller accounts, the analysis cache, and one record per run.

A user's "last updated" mark (`SellerUser.data_updated_at`) is what the hourly
tick reads to decide who needs fetching; each account's analysis sits in
`SellerDataCache` with its own `last_updated`, so a retried run can skip the
accounts an earlier attempt already refreshed. `SellerDataRun` is the
job-status record the seed asks for, kept in the catalog database beside the
data it describes, apart from the engine's own job store.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from conveyor.commerce.catalog import CREDENTIAL_SCHEMES
from conveyor.commerce.db import Base, string_enum, utcnow


def _json_list() -> Any:
    # A type object of its own: the catalog makes its shared JSON type a MutableDict, which refuses lists.
    return JSON().with_variant(postgresql.JSONB(), "postgresql")


class Region(enum.StrEnum):
    """The SP-API regional endpoints an account's marketplace belongs to."""

    NA = "NA"
    EU = "EU"
    FE = "FE"


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    RETRYING = "retrying"
    """Some account hit a temporary failure; the engine runs the job again, skipping finished accounts."""
    COMPLETED = "completed"
    PARTIAL = "partial"
    """At least one account was refreshed and at least one failed for good."""
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    """Stopped mid-run: cancelled, timed out, or handed back by a stopping worker (which reruns it)."""


class SellerUser(Base):
    __tablename__ = "seller_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    data_updated_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    """When the last run over all accounts finished; NULL until the first one."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    accounts: Mapped[list[SellerAccount]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True, order_by="SellerAccount.id"
    )


class SellerAccount(Base):
    """One seller's authorization in one region, used for one marketplace (country)."""

    __tablename__ = "seller_accounts"
    __table_args__ = (
        UniqueConstraint("user_id", "region", "country"),
        CheckConstraint(
            " OR ".join(f"credentials_ref LIKE '{scheme}%'" for scheme in CREDENTIAL_SCHEMES),
            name="credentials_ref_is_reference",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("seller_users.id", ondelete="CASCADE"), index=True)
    region: Mapped[Region] = mapped_column(string_enum(Region, "seller_region"))
    country: Mapped[str] = mapped_column(String(2))
    marketplace_id: Mapped[str] = mapped_column(String(20))
    seller_id: Mapped[str] = mapped_column(String(64))
    credentials_ref: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[SellerUser] = relationship(back_populates="accounts")

    @validates("credentials_ref")
    def _check_reference(self, _key: str, value: str) -> str:
        if not value.startswith(CREDENTIAL_SCHEMES):
            raise ValueError("credentials_ref must be a reference (env:NAME or file:/path#key), not a secret")
        return value

    @validates("country")
    def _check_country(self, _key: str, value: str) -> str:
        if not (len(value) == 2 and value.isalpha() and value.isupper()):
            raise ValueError(f"country must be a two-letter upper-case code like 'US', got {value!r}")
        return value


class SellerDataCache(Base):
    """The latest analysis of one account."""

    __tablename__ = "seller_data_cache"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("seller_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("seller_users.id", ondelete="CASCADE"), index=True)
    analysis: Mapped[dict[str, Any]]
    last_updated: Mapped[datetime]


class SellerDataRun(Base):
    """The job-status record of one `process_user_data` job (all its attempts)."""

    __tablename__ = "seller_data_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("seller_users.id", ondelete="CASCADE"), index=True)
    status: Mapped[RunStatus] = mapped_column(string_enum(RunStatus, "seller_run_status"))
    attempt: Mapped[int]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    duration_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    accounts_total: Mapped[int] = mapped_column(default=0)
    accounts_processed: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(_json_list(), default=list)
    """One entry per failed account: `account_id`, `account` (like `EU-DE`), `kind`, `message`."""
