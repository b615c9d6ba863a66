"""The AI credit ledger: a balance per store and one debit row per (store, job, item).

A charge and its balance update are one transaction, and the debit's unique
key makes the charge idempotent: a retried attempt of the same job asking for
the same item finds the row (and what the credit bought, in `result`) and pays
nothing. A store that cannot pay gets `InsufficientCredits`, an
`Unrecoverable`, so the job fails at once instead of retrying into the same
empty balance. `buy` is the way jobs spend: pay, produce, keep the result,
or refund when producing failed. The other methods are synchronous.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session, sessionmaker

from conveyor import Unrecoverable
from conveyor.commerce.db import insert_ignoring_conflicts, rows_changed

from .tables import CreditBalance, CreditDebit

DAILY_JOB = "daily-charge"
"""The debit `job_id` of daily charges; the item is the day, so each day is charged once."""


class InsufficientCredits(Unrecoverable):
    """The store's balance cannot pay for the item; buying credits, not retrying, fixes it."""


@dataclass(frozen=True)
class Charge:
    amount: int
    """What the item cost the job, whether paid by this call or by an earlier attempt."""
    result: str | None
    """What an earlier attempt recorded for the item, if anything."""


class CreditLedger:
    """Balances and debits of every store, on the catalog database."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def grant(self, store_id: int, amount: int, *, daily_charge: int | None = None) -> int:
        """Add `amount` credits (creating the balance); returns the new balance."""
        if amount < 0:
            raise ValueError("a grant adds credits; use charge() to take them")
        with self._sessions.begin() as session:
            balance = session.get(CreditBalance, store_id, with_for_update=True)
            if balance is None:
                balance = CreditBalance(store_id=store_id, balance=0, daily_charge=0)
                session.add(balance)
            balance.balance += amount
            if daily_charge is not None:
                balance.daily_charge = daily_charge
            return balance.balance

    def balance(self, store_id: int) -> int:
        with self._sessions.begin() as session:
            balance = session.get(CreditBalance, store_id)
            return balance.balance if balance is not None else 0

    def charge(self, store_id: int, job_id: str, item: str, amount: int = 1) -> Charge:
        """Take `amount` for `item` of `job_id`, once; `InsufficientCredits` when the store cannot pay."""
        row = {"store_id": store_id, "job_id": job_id, "item": item, "amount": amount}
        with self._sessions.begin() as session:
            # The debit goes in first: its unique key, not a read, decides whether this call pays.
            if not insert_ignoring_conflicts(session, CreditDebit, [row], ("store_id", "job_id", "item")):
                earlier = session.scalars(_debit(store_id, job_id, item)).one()
                return Charge(earlier.amount, earlier.result)
            taken = rows_changed(
                session,
                update(CreditBalance)
                .where(CreditBalance.store_id == store_id, CreditBalance.balance >= amount)
                .values(balance=CreditBalance.balance - amount),
            )
            if not taken:  # raising rolls the debit back with the transaction
                left = session.scalar(select(CreditBalance.balance).where(CreditBalance.store_id == store_id))
                raise InsufficientCredits(
                    f"Insufficient credits: store {store_id} has {left or 0}, {item} needs {amount}"
                )
            return Charge(amount, None)

    async def buy(
        self, store_id: int, job_id: str, item: str, amount: int, produce: Callable[[], Awaitable[str]]
    ) -> tuple[str, int]:
        """What `produce` makes for `item`, paid once per job: (result, what it cost).

        An earlier attempt's result is reused without calling `produce`; when
        `produce` fails, the charge is given back, so a refused or failed call
        costs the store nothing (a retry pays again, once).
        """
        charge = await asyncio.to_thread(self.charge, store_id, job_id, item, amount)
        if charge.result is not None:
            return charge.result, charge.amount
        try:
            result = await produce()
        except BaseException:
            await asyncio.to_thread(self._refund, store_id, job_id, item)
            raise
        await asyncio.to_thread(self._record, store_id, job_id, item, result)
        return result, charge.amount

    def _refund(self, store_id: int, job_id: str, item: str) -> None:
        with self._sessions.begin() as session:
            debit = session.scalars(
                _debit(store_id, job_id, item).where(CreditDebit.result.is_(None))
            ).first()
            if debit is None:
                return
            session.delete(debit)
            session.execute(
                update(CreditBalance)
                .where(CreditBalance.store_id == store_id)
                .values(balance=CreditBalance.balance + debit.amount)
            )

    def _record(self, store_id: int, job_id: str, item: str, result: str) -> None:
        """Keep what the charged item produced, for a retry to reuse."""
        with self._sessions.begin() as session:
            debit = session.scalars(_debit(store_id, job_id, item)).first()
            if debit is not None:
                debit.result = result

    def debits(self, store_id: int) -> list[CreditDebit]:
        with self._sessions.begin() as session:
            query = select(CreditDebit).where(CreditDebit.store_id == store_id).order_by(CreditDebit.id)
            return list(session.scalars(query))

    def deduct_daily(self, day: date) -> dict[int, int]:
        """Charge every store its daily amount for `day` (at most what it has); store id -> amount taken."""
        taken: dict[int, int] = {}
        with self._sessions.begin() as session:
            stores = session.scalars(
                select(CreditBalance.store_id)
                .where(CreditBalance.daily_charge > 0)
                .order_by(CreditBalance.store_id)
            ).all()
        for store_id in stores:
            with self._sessions.begin() as session:
                balance = session.get(CreditBalance, store_id, with_for_update=True)
                if balance is None or session.scalars(_debit(store_id, DAILY_JOB, day.isoformat())).first():
                    continue
                amount = min(balance.daily_charge, balance.balance)
                session.add(
                    CreditDebit(store_id=store_id, job_id=DAILY_JOB, item=day.isoformat(), amount=amount)
                )
                balance.balance -= amount
                taken[store_id] = amount
        return taken


def _debit(store_id: int, job_id: str, item: str) -> Select[CreditDebit]:
    return select(CreditDebit).where(
        CreditDebit.store_id == store_id, CreditDebit.job_id == job_id, CreditDebit.item == item
    )
