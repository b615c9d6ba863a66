"""Bulk translation of a store's UI labels into one language, one credit per label.

Labels already present in the target language are skipped, so a retried or
repeated run only translates what is missing; the credit for a label is
charged once per job (the debit keeps the translation for a retry).
"""

from __future__ import annotations

import asyncio
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from conveyor import Clock, JobContext, Unrecoverable
from conveyor.commerce.connectors import key_limiter_hook
from conveyor.commerce.db import insert_ignoring_conflicts

from .credits import CreditLedger
from .providers import AISettings, open_provider
from .tables import UiLabel


class Translator:
    """Runs `translation:ui-labels:bulk`; one instance serves every job."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        credits: CreditLedger,
        ai: AISettings | None,
        clock: Clock,
        credits_per_label: int,
    ) -> None:
        self._sessions = sessions
        self._credits = credits
        self._ai = ai
        self._clock = clock
        self._credits_per_label = credits_per_label

    async def run(self, ctx: JobContext, store_id: int, source: str, target: str) -> dict[str, int]:
        if self._ai is None:
            raise Unrecoverable("UI label translation needs an AI provider, and none is configured")
        if source == target:
            raise Unrecoverable(f"source and target language are both {source!r}")
        missing = await asyncio.to_thread(self._missing, store_id, source, target)
        spent = 0
        async with open_provider(self._ai, key_limiter_hook(ctx), self._clock) as provider:
            for n, (key, text) in enumerate(missing, 1):
                translated, cost = await self._credits.buy(
                    store_id,
                    ctx.job.id,
                    f"label:{target}:{key}",
                    self._credits_per_label,
                    partial(provider.translate, text, source=source, target=target),
                )
                spent += cost
                await asyncio.to_thread(self._save, store_id, key, target, translated)
                ctx.progress(
                    None,
                    f"Translating UI labels: {n}/{len(missing)}",
                    step="translate",
                    done=n,
                    total=len(missing),
                )
        return {"translated": len(missing), "credits_spent": spent}

    def _missing(self, store_id: int, source: str, target: str) -> list[tuple[str, str]]:
        """(key, text) of the source labels without a target-language row, by key."""
        with self._sessions.begin() as session:
            done = select(UiLabel.key).where(UiLabel.store_id == store_id, UiLabel.language == target)
            query = (
                select(UiLabel.key, UiLabel.value)
                .where(UiLabel.store_id == store_id, UiLabel.language == source, UiLabel.key.not_in(done))
                .order_by(UiLabel.key)
            )
            return [(key, value) for key, value in session.execute(query)]

    def _save(self, store_id: int, key: str, language: str, value: str) -> None:
        row = {"store_id": store_id, "key": key, "language": language, "value": value}
        with self._sessions.begin() as session:
            insert_ignoring_conflicts(session, UiLabel, [row], ("store_id", "key", "language"))
