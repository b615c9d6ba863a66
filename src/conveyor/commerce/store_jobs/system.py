"""Maintenance jobs: the daily AI credit charge and the cleanup of finished jobs.

Both run on the cron schedules `register` declares (`daily_credit_cron`,
`cleanup_cron`), and both are safe to run twice: the daily charge is keyed by
the day, and cleanup only removes what is already past retention.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from conveyor import Clock, JobContext

from .credits import CreditLedger


async def daily_credit_deduction(ctx: JobContext, credits: CreditLedger, clock: Clock) -> dict[str, object]:
    """Charge each store its daily credits for today (UTC)."""
    day = datetime.fromtimestamp(clock.now(), UTC).date()
    taken = await asyncio.to_thread(credits.deduct_daily, day)
    ctx.progress(100, f"Daily credits charged: {len(taken)} stores")
    return {"day": day.isoformat(), "charged": {str(store): amount for store, amount in taken.items()}}


async def cleanup(ctx: JobContext, keep_last: int | None, max_age: float) -> dict[str, int]:
    """Delete finished jobs older than `max_age` seconds, keeping the newest `keep_last` of each kind."""
    removed = await ctx.app.cleanup(keep_last=keep_last, max_age=max_age)
    ctx.progress(100, f"Removed {removed} finished jobs")
    return {"removed": removed}
