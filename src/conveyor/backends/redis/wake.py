"""Waking idle workers: a pub/sub channel instead of polling.

Scripts that make work ready (enqueue, retry, resume, recover, settle of a
retry) publish the queue's name on `{prefix}:wake`. One subscriber task per
backend counts the messages per queue. `fetch` takes a snapshot of the counts
before it claims; `wait_for_jobs` returns as soon as a count for one of its
queues differs from that snapshot. So a message that arrives between an empty
fetch and the wait is not lost: the wait returns at once and the worker
fetches again. A (re)subscription counts as a message for every queue, since
anything published while the channel was down was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .store import cancel_count, restore_cancel

log = logging.getLogger("conveyor.backends.redis")

LISTEN_TIMEOUT = 30.0
MAX_BACKOFF = 5.0


class WakeUps:
    def __init__(self, client: aioredis.Redis, channel: str) -> None:
        self._client = client
        self._channel = channel
        self._seen: Counter[str] = Counter()
        self._epoch = 0  # subscriptions made; each one may have missed messages
        self._snapshot: tuple[int, Counter[str]] = (0, Counter())
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def mark(self) -> None:
        """Called before a fetch: later messages mean the fetch may have missed work."""
        self._snapshot = (self._epoch, self._seen.copy())

    def _woken(self, queues: Sequence[str]) -> bool:
        epoch, seen = self._snapshot
        return epoch != self._epoch or any(self._seen[q] != seen[q] for q in queues)

    async def wait(self, queues: Sequence[str], timeout: float) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="conveyor-redis-wake")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._changed.clear()
            if self._woken(queues):
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        backoff = 0.1
        before = cancel_count()
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self._epoch += 1
                self._changed.set()
                if backoff > 0.1:
                    log.info("wake-up channel %s is back", self._channel)
                backoff = 0.1
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=LISTEN_TIMEOUT)
                    restore_cancel(before)
                    if message is not None and message["type"] == "message":
                        self._seen[message["data"]] += 1
                        self._changed.set()
            except (RedisError, OSError) as exc:
                restore_cancel(before)
                if backoff == 0.1:
                    log.warning(
                        "lost the wake-up channel %s (%s); idle workers poll until it is back",
                        self._channel,
                        exc,
                    )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis-py 8.2
