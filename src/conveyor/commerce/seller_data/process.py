"""`process_user_data`: refresh every seller account of one user, one account at a time.

An account that fails does not stop the others: its error goes into the
run's record and the next account starts. What happens next depends on why
accounts failed:

- some were throttled (429): the job is re-delayed by the longest wait asked
  for, without spending an attempt;
- some failed for a temporary reason (5xx, timeout) and attempts remain: the
  job fails this attempt and the engine retries it with back-off;
- otherwise the run ends: `completed`, `partial` (some refreshed, some failed
  for good) or `failed` (none refreshed; the engine job fails too, so it shows
  among failed jobs).

A run stopped mid-way (cancelled, timed out, or handed back by a stopping
worker) is recorded as `interrupted` with what it had done; if the engine runs
the job again, the same record is reopened.

A retry skips the accounts an earlier attempt of the same job refreshed (their
cache is newer than the job), so no account is fetched twice for one request.
The user is marked updated unless every account failed, so the hourly tick
does not pick them up again before their data is stale.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from conveyor import Clock, ConfigurationError, JobContext, RateLimited, Unrecoverable
from conveyor.commerce.connectors.base import TransientError

from .analysis import analyse
from .fetch import Endpoints, fetch_account
from .models import RunStatus
from .store import AccountError, AccountRef, SellerDataStore

DAY = 86400.0


@dataclass
class _Tally:
    """What a run has done so far, kept outside the loop so an interruption can still record it."""

    accounts: list[AccountRef]
    refreshed: int = 0
    errors: list[AccountError] = field(default_factory=list)


@dataclass(frozen=True)
class UserDataProcessor:
    store: SellerDataStore
    endpoints: Endpoints
    clock: Clock
    window_days: int
    timeout: float

    async def run(self, ctx: JobContext, user_id: int) -> dict[str, Any]:
        accounts = await asyncio.to_thread(self.store.accounts, user_id)
        if accounts is None:
            raise Unrecoverable(f"seller-data user {user_id} does not exist")
        job = ctx.job
        await asyncio.to_thread(self.store.start_run, job.id, user_id, ctx.attempt, self.clock.now())
        tally = _Tally(accounts)
        try:
            return await self._walk(ctx, user_id, tally)
        except asyncio.CancelledError:
            # No awaiting here: a stopping worker may cancel again. One short write keeps the record true.
            self._finish(job.id, RunStatus.INTERRUPTED, tally)
            raise

    async def _walk(self, ctx: JobContext, user_id: int, tally: _Tally) -> dict[str, Any]:
        job, accounts, errors = ctx.job, tally.accounts, tally.errors
        waits: list[float] = []
        for done, account in enumerate(accounts, start=1):
            fetching = f"{account.label}: fetching orders and inventory"
            ctx.progress(done=done - 1, total=len(accounts), message=fetching, step=account.label)
            outcome = await self._account(account, since=job.created_at)
            if isinstance(outcome, AccountError):
                errors.append(outcome)
                if isinstance(outcome.cause, RateLimited):
                    waits.append(outcome.cause.retry_after)
                message = f"{account.label}: failed ({outcome.kind})"
            else:
                tally.refreshed += 1
                message = f"{account.label}: {outcome}"
            ctx.log(message)
            ctx.progress(done=done, total=len(accounts), message=message, step=account.label)
        temporary = [e for e in errors if e.kind == "temporary"]
        if waits or (temporary and ctx.attempt < job.max_attempts):
            await asyncio.to_thread(self._finish, job.id, RunStatus.RETRYING, tally)
            if waits:
                raise RateLimited(max(waits), f"{len(waits)} account(s) throttled; the rest are kept")
            raise TransientError(f"{len(temporary)} account(s) failed for now: {temporary[0].message}")
        if not errors:
            status = RunStatus.COMPLETED
        else:
            status = RunStatus.PARTIAL if tally.refreshed else RunStatus.FAILED
        if status is not RunStatus.FAILED:
            await asyncio.to_thread(self.store.mark_updated, user_id, self.clock.now())
        await asyncio.to_thread(self._finish, job.id, status, tally)
        if status is RunStatus.FAILED:
            raise Unrecoverable(f"every account failed; first: {errors[0].label}: {errors[0].message}")
        return {
            "user_id": user_id,
            "status": status.value,
            "accounts_total": len(accounts),
            "accounts_processed": tally.refreshed,
            "errors": [e.as_json() for e in errors],
        }

    async def _account(self, account: AccountRef, *, since: float) -> AccountError | str:
        """Refresh one account; a one-line summary, or why it could not be refreshed."""
        if await asyncio.to_thread(self.store.refreshed_since, account.id, since):
            return "already refreshed by an earlier attempt"
        now = self.clock.now()
        try:
            data = await fetch_account(
                account,
                endpoints=self.endpoints,
                since=now - self.window_days * DAY,
                clock=self.clock,
                timeout=self.timeout,
            )
        except RateLimited as e:
            return AccountError.of(account, "rate_limited", e)
        except TransientError as e:
            return AccountError.of(account, "temporary", e)
        except (Unrecoverable, ConfigurationError) as e:
            return AccountError.of(account, "permanent", e)
        analysis = analyse(data.orders, data.items, data.inventory, window_days=self.window_days)
        await asyncio.to_thread(self.store.save_analysis, account, analysis, self.clock.now())
        return f"{analysis['orders']} orders, {analysis['units']} units, {len(analysis['skus'])} SKUs"

    def _finish(self, job_id: str, status: RunStatus, tally: _Tally) -> None:
        self.store.finish_run(
            job_id,
            status,
            self.clock.now(),
            accounts_total=len(tally.accounts),
            accounts_processed=tally.refreshed,
            errors=tally.errors,
        )
