"""Keys (rate limits, breakers, pauses), groups and fair claiming on Redis.

A claim must check and take a key's token in the script that claims the job,
and that script runs in the job's queue's slot. So the state a claim needs
lives there: each queue keeps its own copy of a key, `{p:q}:key:<key>`
(bucket, blocked-until time, pause flag, breaker, probe job), and the fetch
script decides alone, atomically (`lua/limits.lua`, `lua/fetch.lua`).
Consequences, by design: a key used by several queues has one token bucket
(and one probe) per queue; a group's concurrency is counted per queue.

What is said about a key from outside a queue (`pause_key`, `feed_key`,
`key_failure`) goes first to the key's global record (`{p}:keyfacts`, in the
global slot, `key_fact.lua`), then to every known queue's copy
(`key_apply.lua`), where each change applies once whatever the order of
arrival. A queue that becomes known later must not miss a record: before a
process first fetches from a queue it adds the queue to `{p}:queues` and
then copies every global record into it. Either the queue was known when a
change was spread (so it got the change), or it was added after the change
was recorded (so the copy includes it).

A success closes the breaker in its own queue at once (settle.lua); the global
record learns of it at the next `key_failure`, which first reads the queues'
copies: a success at the current breaker version resets the failure count.
`keys()` merges the global record with the copies.
"""

from __future__ import annotations

import json
from typing import Any

from ...job import Job
from ...limits import BreakerState, KeyState
from ..base import FetchParams
from .records import job_from_hash, num
from .store import Script, Store, translate_errors
from .wake import WakeUps

FETCH_BUDGET = 1000  # jobs one fetch script looks at, at most, per step (see fetch.lua)


def _state(key: str, record: dict[str, Any], copies: list[dict[str, str]]) -> KeyState:
    """A key as one: the global record, and the queues' copies (tokens, probes, closed breakers)."""
    buckets = [c for c in copies if "cap" in c]
    breaker = BreakerState(record.get("breaker", "closed"))
    failures = int(record.get("failures", 0))
    if any(float(c.get("ok", -1)) >= float(record.get("bv", 0)) for c in copies if "ok" in c):
        breaker, failures = BreakerState.CLOSED, 0
    probes = [c["probe"] for c in copies if c.get("breaker") == "half_open" and "probe" in c]
    if breaker is BreakerState.OPEN and probes:
        breaker = BreakerState.HALF_OPEN
    blocked = [float(record.get("until", 0))] + [float(c.get("until", 0)) for c in copies]
    return KeyState(
        key=key,
        capacity=float(buckets[0]["cap"]) if buckets else None,
        per=float(buckets[0]["per"]) if buckets else None,
        tokens=min((float(c["tokens"]) for c in buckets), default=0.0),
        blocked_until=max(blocked),
        paused=record.get("paused", "0") == "1" or any(c.get("paused") == "1" for c in copies),
        failures=failures,
        breaker=breaker,
        probe_job=probes[0] if probes else None,
    )


def _fetch_args(params: FetchParams, queue: str, limit: int) -> tuple[str | int, ...]:
    rate = params.queue_rates.get(queue)
    fair = "1" if queue in params.fair_queues else ""
    limits = (rate.limit, num(rate.per)) if rate is not None else ("", "")
    return (
        num(params.now),
        limit,
        params.worker_id,
        num(params.lease_until),
        FETCH_BUDGET,
        fair,
        queue,
        *limits,
    )


class RedisLimits:
    """`fetch` and the key methods of `RedisBackend`."""

    _store: Store
    _wake: WakeUps | None
    _synced_queues: set[str]  # queues this process copied the global key records into
    where: str

    @translate_errors
    async def fetch(self, params: FetchParams) -> list[Job]:
        """One fetch script per queue, in one round trip; again for queues that ran out of budget.

        A process's first fetch from a queue first copies the global key records into it.
        """
        if self._wake is not None:
            self._wake.mark()
        limits = {q: n for q, n in params.limits.items() if n > 0}
        fresh = [q for q in limits if q not in self._synced_queues]
        prelude = await self._sync_facts(fresh) if fresh else []
        jobs: list[Job] = []
        while limits:
            calls = [
                Script("fetch", self._store.keys.queue(q), _fetch_args(params, q, n))
                for q, n in limits.items()
            ]
            outs = (await self._store.run([*prelude, *calls]))[len(prelude) :]
            self._synced_queues.update(fresh)
            prelude = []
            more = {}
            for (q, n), (claimed, unfinished) in zip(limits.items(), outs, strict=True):
                found = [job_from_hash(h) for h in json.loads(claimed)]
                jobs += found
                if unfinished and len(found) < n:
                    more[q] = n - len(found)
            limits = more
        for job in jobs:
            self._store.remember(job.id, job.queue)
        jobs.sort(key=lambda j: j.priority)
        return jobs

    async def _sync_facts(self, queues: list[str]) -> list[Script]:
        """Calls that copy every global key record into `queues` (see the module docstring)."""
        layout = self._store.keys
        pipe = self._store.client.pipeline(transaction=False)
        pipe.sadd(layout.queues, *queues)
        pipe.hgetall(layout.base + ":keyfacts")
        _, facts = await pipe.execute()
        self._store.known_queues.update(queues)
        if not facts:
            return []
        records = json.dumps({key: json.loads(record) for key, record in facts.items()})
        return [Script("key_apply", layout.queue(q), (layout.wake, q, records)) for q in queues]

    async def _change_key(self, key: str, what: str, *args: str) -> dict[str, Any]:
        """Record a change globally, then copy it into every known queue."""
        layout = self._store.keys
        (record,) = await self._store.run([Script("key_fact", layout.base, (key, what, *args))])
        queues = await self._store.all_queues()
        records = json.dumps({key: json.loads(record)})
        await self._store.run(Script("key_apply", layout.queue(q), (layout.wake, q, records)) for q in queues)
        parsed: dict[str, Any] = json.loads(record)
        return parsed

    @translate_errors
    async def keys(self) -> list[KeyState]:
        layout = self._store.keys
        facts = await self._store.hgetall(layout.base + ":keyfacts")
        queues = await self._store.all_queues()
        pipe = self._store.client.pipeline(transaction=False)
        for q in queues:
            pipe.smembers(layout.index(q, "keys"))
        owned = [(q, key) for q, names in zip(queues, await pipe.execute(), strict=True) for key in names]
        for q, key in owned:
            pipe.hgetall(layout.index(q, "key:" + key))
        copies: dict[str, list[dict[str, str]]] = {key: [] for key in facts}
        for (_, key), copy in zip(owned, await pipe.execute(), strict=True):
            copies.setdefault(key, []).append(copy)
        return [_state(k, json.loads(facts.get(k, "{}")), copies[k]) for k in sorted(copies)]

    @translate_errors
    async def pause_key(self, key: str, *, paused: bool) -> None:
        await self._change_key(key, "pause", "1" if paused else "0")

    @translate_errors
    async def feed_key(self, key: str, *, now: float, remaining: float | None, blocked_until: float) -> None:
        await self._change_key(
            key, "feed", num(now), "" if remaining is None else num(remaining), num(blocked_until)
        )

    @translate_errors
    async def key_failure(self, key: str, *, now: float, threshold: int, cooldown: float) -> KeyState:
        layout = self._store.keys
        pipe = self._store.client.pipeline(transaction=False)
        for q in await self._store.all_queues():
            pipe.hget(layout.index(q, "key:" + key), "ok")
        closed = [float(ok) for ok in await pipe.execute() if ok is not None]
        since = num(max(closed)) if closed else ""
        record = await self._change_key(key, "failure", num(now + cooldown), str(threshold), since)
        return _state(key, record, [])
