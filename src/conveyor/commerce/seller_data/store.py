"""Reads and writes of the seller-data tables, as short transactions a job calls from a thread.

Callers get frozen snapshots (`AccountRef`), never ORM objects, so nothing
lazy-loads outside its session. Times come from the caller's clock, so a
test's fake clock decides what "stale" and "already refreshed" mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from .models import Region, RunStatus, SellerAccount, SellerDataCache, SellerDataRun, SellerUser


@dataclass(frozen=True)
class AccountRef:
    id: int
    user_id: int
    region: Region
    country: str
    marketplace_id: str
    seller_id: str
    credentials_ref: str

    @property
    def label(self) -> str:
        return f"{self.region.value}-{self.country}"


@dataclass(frozen=True)
class AccountError:
    """Why one account was not refreshed; stored in the run record as JSON."""

    account_id: int
    label: str
    kind: str
    """`permanent` (bad credentials, rejected request), `temporary` (5xx, timeout) or `rate_limited`."""
    message: str
    cause: Exception = field(compare=False, repr=False)

    @classmethod
    def of(cls, account: AccountRef, kind: str, cause: Exception) -> AccountError:
        return cls(account.id, account.label, kind, str(cause), cause)

    def as_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "account": self.label,
            "kind": self.kind,
            "message": self.message,
        }


def at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


class SellerDataStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def users_due(self, now: float, stale_after: float) -> list[int]:
        """Users never updated, or last updated `stale_after` seconds ago or more, oldest first."""
        cutoff = at(now) - timedelta(seconds=stale_after)
        statement = (
            select(SellerUser.id)
            .where(or_(SellerUser.data_updated_at.is_(None), SellerUser.data_updated_at <= cutoff))
            .order_by(SellerUser.data_updated_at.is_not(None), SellerUser.data_updated_at, SellerUser.id)
        )
        with self._sessions() as session:
            return list(session.scalars(statement))

    def accounts(self, user_id: int) -> list[AccountRef] | None:
        """The user's accounts in a stable order; None when there is no such user."""
        with self._sessions() as session:
            user = session.get(SellerUser, user_id)
            if user is None:
                return None
            return [_ref(account) for account in user.accounts]

    def refreshed_since(self, account_id: int, since: float) -> bool:
        with self._sessions() as session:
            cache = session.get(SellerDataCache, account_id)
            return cache is not None and cache.last_updated >= at(since)

    def save_analysis(self, account: AccountRef, analysis: dict[str, Any], now: float) -> None:
        with self._sessions.begin() as session:
            cache = session.get(SellerDataCache, account.id)
            if cache is None:
                cache = SellerDataCache(account_id=account.id, user_id=account.user_id)
                session.add(cache)
            cache.analysis = analysis
            cache.last_updated = at(now)

    def mark_updated(self, user_id: int, now: float) -> None:
        with self._sessions.begin() as session:
            user = session.get(SellerUser, user_id)
            if user is not None:
                user.data_updated_at = at(now)

    def start_run(self, job_id: str, user_id: int, attempt: int, now: float) -> None:
        """Open the job's record, or reopen it for another attempt (keeping its first start)."""
        with self._sessions.begin() as session:
            run = session.scalar(select(SellerDataRun).where(SellerDataRun.job_id == job_id))
            if run is None:
                session.add(
                    SellerDataRun(
                        job_id=job_id,
                        user_id=user_id,
                        status=RunStatus.RUNNING,
                        attempt=attempt,
                        started_at=at(now),
                        errors=[],
                    )
                )
                return
            run.status = RunStatus.RUNNING
            run.attempt = attempt
            run.finished_at = None
            run.duration_seconds = None

    def finish_run(
        self,
        job_id: str,
        status: RunStatus,
        now: float,
        *,
        accounts_total: int,
        accounts_processed: int,
        errors: Sequence[AccountError],
    ) -> None:
        with self._sessions.begin() as session:
            run = session.scalars(select(SellerDataRun).where(SellerDataRun.job_id == job_id)).one()
            run.status = status
            run.accounts_total = accounts_total
            run.accounts_processed = accounts_processed
            run.errors = [e.as_json() for e in errors]
            if status is not RunStatus.RETRYING:
                run.finished_at = at(now)
                run.duration_seconds = round((run.finished_at - run.started_at).total_seconds(), 3)


def _ref(account: SellerAccount) -> AccountRef:
    a = account
    return AccountRef(a.id, a.user_id, a.region, a.country, a.marketplace_id, a.seller_id, a.credentials_ref)
