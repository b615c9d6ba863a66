"""The distributed backend: Redis, every state change one Lua script.

Scripts change one queue at a time (one Redis Cluster slot), so operations
that span queues (fetch, settle, renew, recover) send one script call per
queue, pipelined into one round trip. Time comes from the caller as exact
strings; Redis's own clock is never read. Reads may take several round trips.
"""

from __future__ import annotations

import heapq
import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from ...errors import BackendError, ConfigurationError, InvalidStateTransition
from ...events import DEFAULT_EVENTS_MAX
from ...job import AttemptError, BagEntry, Job, JobState, LogLine, NewJob, NewJobBatch, PhaseSpec
from ..base import (
    EnqueueResult,
    JobFilter,
    JobPage,
    ProgressUpdate,
    QueueCounts,
    RecoverResult,
    RenewResult,
    RetentionParams,
    Settlement,
    WorkerInfo,
)
from . import listing
from .events import RedisEvents
from .flows import CHUNK, Flows, Posted, chunks, posted
from .keys import KeyLayout
from .limits import RedisLimits
from .records import (
    PHASE,
    bag_entries,
    bag_field,
    batch_args,
    enqueue_args,
    error_from_json,
    job_from_hash,
    log_entry,
    log_from_entry,
    new_job_record,
    num,
    phase_value,
    progress_fields,
    settlement_fields,
)
from .schedules import RedisSchedules
from .store import Command, Script, Store, translate_errors
from .wake import WakeUps

BATCH = 1000  # promotions, recoveries and deletions per script call
LOG_CAP = 10_000  # newest log lines kept per job
WORKER_MEMORY = 24 * 3600.0  # a worker not seen for this long is forgotten
WORKER_LOST = "the worker running this attempt stopped renewing its lease"


class RedisBackend(RedisSchedules, RedisLimits, RedisEvents):
    """`redis://[:password@]host:port/db`, `rediss://...` (TLS) or `unix:///path.sock`.

    `events_max` bounds each queue's event stream (approximately: Redis trims whole nodes).
    """

    def __init__(self, url: str, *, prefix: str = "conveyor", events_max: int = DEFAULT_EVENTS_MAX) -> None:
        if events_max < 1:
            raise ConfigurationError(f"events_max must be at least 1, got {events_max}")
        self.layout = KeyLayout(prefix)
        self.events_max = events_max
        self._store = Store(url, self.layout, events_max=events_max)
        self._flows = Flows(self._store, self.layout)
        self.where = self._store.where
        self._wake: WakeUps | None = None
        self._synced_queues: set[str] = set()

    def __repr__(self) -> str:
        return f"RedisBackend({self.where!r}, prefix={self.layout.prefix!r})"

    def _base(self, queue: str) -> str:
        return self.layout.queue(queue)

    @translate_errors
    async def open(self) -> None:
        await self._store.open()
        self._wake = WakeUps(self._store.client, self.layout.wake)

    async def close(self) -> None:
        if self._wake is not None:
            await self._wake.close()
            self._wake = None
        await self._store.close()

    # write ------------------------------------------------------------------------------

    @translate_errors
    async def enqueue(self, jobs: Sequence[NewJob]) -> list[EnqueueResult]:
        if any(job.parent_id is not None for job in jobs):
            return await self._flows.enqueue(jobs)
        if len(jobs) == 1:
            return [await self._enqueue_one(jobs[0])]
        by_queue: dict[str, list[NewJob]] = defaultdict(list)
        for job in jobs:
            by_queue[job.queue].append(job)
        planned = [(q, chunk) for q, queued in by_queue.items() for chunk in chunks(queued, CHUNK)]
        new_queues = set(by_queue) - self._store.known_queues

        def commands() -> Iterator[Script | Command]:
            """Built lazily, so Redis runs one chunk while the next is being built."""
            if new_queues:
                yield ("SADD", self.layout.queues, *new_queues)
            for queue, chunk in planned:
                records = [new_job_record(job) for job in chunk]
                args = enqueue_args(self.layout.wake, queue, records)
                yield from self._store.storing(queue, [job.id for job in chunk], args)

        outs = await self._store.run(commands())
        self._store.known_queues |= new_queues
        holders: dict[str, str] = {}
        for (_, chunk), (collisions, _, _) in zip(planned, outs, strict=True):
            for position, holder in zip(collisions[::2], collisions[1::2], strict=True):
                holders[chunk[position - 1].id] = holder
        if holders:
            await self._store.run([self._store.unregister(holders)])
        return [EnqueueResult(holders.get(job.id, job.id), job.id not in holders) for job in jobs]

    async def _enqueue_one(self, job: NewJob) -> EnqueueResult:
        """One job, the most frequent call: no grouping by queue, no chunks."""
        queue = job.queue
        args = enqueue_args(self.layout.wake, queue, [new_job_record(job)])
        commands: list[Script | Command] = [*self._store.storing(queue, (job.id,), args)]
        if queue not in self._store.known_queues:
            commands.insert(0, ("SADD", self.layout.queues, queue))
        ((collisions, _, _),) = await self._store.run(commands)
        self._store.known_queues.add(queue)
        if not collisions:
            return EnqueueResult(job.id, True)
        await self._store.run([self._store.unregister((job.id,))])
        return EnqueueResult(collisions[1], False)

    @translate_errors
    async def enqueue_batch(self, batch: NewJobBatch) -> None:
        queue = batch.template.queue
        new_queue = queue not in self._store.known_queues

        def commands() -> Iterator[Script | Command]:
            """Built lazily, so Redis runs one chunk while the next is being built."""
            if new_queue:
                yield ("SADD", self.layout.queues, queue)
            record = new_job_record(batch.template)
            for start in range(0, len(batch.ids), CHUNK):
                ids = batch.ids[start : start + CHUNK]
                args = batch_args(self.layout.wake, queue, record, ids, batch.payloads[start : start + CHUNK])
                yield from self._store.storing(queue, ids, args)

        await self._store.run(commands())
        self._store.known_queues.add(queue)

    @translate_errors
    async def cancel(self, job_id: str, *, now: float) -> Job | None:
        queue = await self._store.queue_of(job_id)
        if queue is None:
            return None
        (out,) = await self._store.run([Script("cancel", self._base(queue), (job_id, num(now)))])
        if not out:
            return None
        job_json, flat = out
        if not flat:
            return job_from_hash(json.loads(job_json))
        await self._flows.deliver(posted(queue, flat), now)
        return await self.get(job_id)

    @translate_errors
    async def retry(self, job_id: str, *, now: float) -> Job | None:
        queue = await self._store.queue_of(job_id)
        if queue is None:
            return None
        (out,) = await self._store.run(
            [Script("retry", self._base(queue), (job_id, num(now), self.layout.wake, queue))]
        )
        if not out:
            return None
        if out == "dedup-conflict":
            raise InvalidStateTransition(
                f"job {job_id} cannot be retried: another live job has its dedup key"
            )
        job_json, flat = out
        await self._flows.deliver(posted(queue, flat), now)
        return job_from_hash(json.loads(job_json))

    @translate_errors
    async def remove(self, job_id: str) -> bool:
        queue = await self._store.queue_of(job_id)
        if queue is None:
            return False
        (removed,) = await self._store.run(
            [Script("remove", self._base(queue), (job_id,)), self._store.unregister((job_id,))]
        )
        self._store.forget([job_id])
        return bool(removed)

    # claim and settle -------------------------------------------------------------------

    @translate_errors
    async def settle(self, settlements: Sequence[Settlement], *, now: float) -> int:
        queues = await self._store.queues_of([s.job_id for s in settlements])
        by_queue: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for s in settlements:
            if s.job_id in queues:
                by_queue[queues[s.job_id]].append(settlement_fields(s))
        calls = [
            (q, Script("settle", self._base(q), (num(now), self.layout.wake, q, json.dumps(chunk))))
            for q, items in by_queue.items()
            for chunk in chunks(items, CHUNK)
        ]
        applied = 0
        entries: Posted = []
        if calls:
            for (q, _), (n, flat) in zip(calls, await self._store.run(c for _, c in calls), strict=True):
                applied += n
                entries += posted(q, flat)
        self._store.forget(s.job_id for s in settlements)
        await self._flows.deliver(entries, now)
        return int(applied)

    # leases and workers -----------------------------------------------------------------

    @translate_errors
    async def renew(self, worker: WorkerInfo, job_ids: Sequence[str], *, lease_until: float) -> RenewResult:
        queues = await self._store.queues_of(job_ids) if job_ids else {}
        by_queue: dict[str, list[str]] = defaultdict(list)
        for job_id, queue in queues.items():
            by_queue[queue].append(job_id)
        beat = Script(
            "heartbeat",
            self.layout.base,
            (
                worker.id,
                json.dumps(asdict(worker)),
                num(worker.last_seen),
                num(worker.last_seen - WORKER_MEMORY),
            ),
        )
        calls = [
            Script("renew", self._base(q), (worker.id, num(lease_until), *ids)) for q, ids in by_queue.items()
        ]
        outs = (await self._store.run([beat, *calls]))[1:]
        lost = set(job_ids) - set(queues)
        cancel: set[str] = set()
        for gone, cancelled in outs:
            lost.update(gone)
            cancel.update(cancelled)
        return RenewResult(frozenset(lost), frozenset(cancel))

    @translate_errors
    async def recover(self, *, now: float) -> RecoverResult:
        result = RecoverResult()
        everywhere = queues = await self._store.all_queues()
        entries: Posted = []
        while queues:
            calls = [
                Script("recover", self._base(q), (num(now), self.layout.wake, q, BATCH, WORKER_LOST))
                for q in queues
            ]
            outs = await self._store.run(calls)
            full = []
            for queue, (requeued, failed, cancelled, flat) in zip(queues, outs, strict=True):
                entries += posted(queue, flat)
                result.requeued.extend(requeued)
                result.failed.extend(failed)
                result.cancelled.extend(cancelled)
                if len(requeued) + len(failed) + len(cancelled) == BATCH:
                    full.append(queue)
            queues = full
        await self._flows.deliver(entries, now)
        await self._flows.sweep(everywhere, now)
        await self._replay_fired_ticks(now)
        return result

    @translate_errors
    async def unregister_worker(self, worker_id: str) -> None:
        await self._store.run([Script("unregister", self.layout.base, (worker_id,))])

    @translate_errors
    async def workers(self, *, alive_since: float) -> list[WorkerInfo]:
        infos = [WorkerInfo(**json.loads(v)) for v in await self._store.hvals(self.layout.workers)]
        return sorted((w for w in infos if w.last_seen >= alive_since), key=lambda w: w.id)

    # progress and logs ------------------------------------------------------------------

    @translate_errors
    async def progress(self, updates: Sequence[ProgressUpdate], *, now: float | None = None) -> None:
        queues = await self._store.queues_of([u.job_id for u in updates])
        by_queue: dict[str, list[dict[str, str]]] = defaultdict(list)
        for u in updates:
            if u.job_id in queues:
                by_queue[queues[u.job_id]].append(progress_fields(u))
        at = "" if now is None else num(now)
        calls = [Script("progress", self._base(q), (json.dumps(items), at)) for q, items in by_queue.items()]
        if calls:
            await self._store.run(calls)

    @translate_errors
    async def log(self, lines: Sequence[LogLine]) -> None:
        queues = await self._store.queues_of([line.job_id for line in lines])
        by_queue: dict[str, list[str]] = defaultdict(list)
        for line in lines:
            if line.job_id in queues:
                by_queue[queues[line.job_id]] += [line.job_id, log_entry(line)]
        calls = [Script("log", self._base(q), (LOG_CAP, *args)) for q, args in by_queue.items()]
        if calls:
            await self._store.run(calls)

    # read -------------------------------------------------------------------------------

    @translate_errors
    async def get(self, job_id: str) -> Job | None:
        queue = await self._store.queue_of(job_id)
        if queue is None:
            return None
        h = await self._store.hgetall(self.layout.job(queue, job_id))
        return job_from_hash(h) if h else None

    @translate_errors
    async def list_jobs(
        self, job_filter: JobFilter, *, limit: int = 50, cursor: str | None = None
    ) -> JobPage:
        return await listing.list_jobs(self._store, job_filter, limit, cursor)

    @translate_errors
    async def counts(self, *, tenant: str | None = None) -> list[QueueCounts]:
        queues = await self._store.all_queues()
        pipe = self._store.client.pipeline(transaction=False)
        for q in queues:
            pipe.hgetall(
                self.layout.index(q, "counts") if tenant is None else self.layout.tenant_counts(q, tenant)
            )
            pipe.exists(self.layout.index(q, "paused"))
        replies = await pipe.execute()
        result = []
        for q, counters, paused in zip(queues, replies[::2], replies[1::2], strict=True):
            states = {JobState(k): int(v) for k, v in counters.items() if k != "retrying" and int(v)}
            if states or (paused and tenant is None):
                result.append(QueueCounts(q, states, int(counters.get("retrying", 0)), bool(paused)))
        return result

    @translate_errors
    async def errors(self, job_id: str) -> list[AttemptError]:
        queue = await self._store.queue_of(job_id)
        if queue is None:
            return []
        entries = await self._store.lrange(self.layout.errors(queue, job_id), 0, -1)
        return [error_from_json(e) for e in entries]

    @translate_errors
    async def logs(self, job_id: str, *, limit: int = 1000) -> list[LogLine]:
        queue = await self._store.queue_of(job_id)
        if queue is None or limit <= 0:
            return []
        entries = await self._store.lrange(self.layout.logs(queue, job_id), -limit, -1)
        return [log_from_entry(job_id, e) for e in entries]

    # flows and trackers -----------------------------------------------------------------

    @translate_errors
    async def tree(self, job_id: str) -> list[Job]:
        return await self._flows.tree(job_id)

    @translate_errors
    async def set_phases(self, job_id: str, phases: Mapping[str, PhaseSpec]) -> None:
        queue = await self._store.queue_of(job_id)
        if queue is None or not phases:
            return
        fields = [x for name, spec in phases.items() for x in (PHASE + name, phase_value(spec))]
        await self._store.run([Script("phases", self._base(queue), (job_id, *fields))])

    @translate_errors
    async def add_to_bag(self, entries: Sequence[BagEntry]) -> None:
        queues = await self._store.queues_of([e.job_id for e in entries])
        by_queue: dict[str, list[str]] = defaultdict(list)
        for e in entries:
            if e.job_id in queues:
                by_queue[queues[e.job_id]] += [e.job_id, bag_field(e), e.message, num(e.at)]
        calls = [
            Script("bag", self._base(q), tuple(c))
            for q, args in by_queue.items()
            for c in chunks(args, 4 * CHUNK)
        ]
        if calls:
            await self._store.run(calls)

    @translate_errors
    async def bag(self, job_ids: Sequence[str]) -> list[BagEntry]:
        queues = await self._store.queues_of(job_ids)
        wanted = [i for i in dict.fromkeys(job_ids) if i in queues]
        pipe = self._store.client.pipeline(transaction=False)
        for job_id in wanted:
            pipe.hgetall(self.layout.bag(queues[job_id], job_id))
        found = []
        for index, (job_id, h) in enumerate(zip(wanted, await pipe.execute(), strict=True)):
            found += [(at, index, n, entry) for at, n, entry in bag_entries(job_id, h)]
        found.sort(key=lambda t: t[:3])
        return [entry for *_, entry in found]

    # waiting for work -------------------------------------------------------------------

    @translate_errors
    async def next_due(self, queues: Sequence[str]) -> float | None:
        pipe = self._store.client.pipeline(transaction=False)
        for q in queues:
            pipe.zrange(self.layout.index(q, "scheduled"), 0, 0, withscores=True)
        firsts = [score for reply in await pipe.execute() for _, score in reply]
        return min(firsts, default=None)

    async def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> None:
        """Return when one of `queues` may have new work (pub/sub), or after `timeout`."""
        if self._wake is None:
            raise BackendError("the Redis backend is not open")
        await self._wake.wait(queues, timeout)

    # admin ------------------------------------------------------------------------------

    @translate_errors
    async def pause(self, queue: str) -> None:
        # The queue joins the known queues so counts() shows it paused even while it is empty.
        await self._store.run([("SADD", self.layout.queues, queue), Script("pause", self._base(queue))])

    @translate_errors
    async def resume(self, queue: str) -> None:
        await self._store.run([Script("resume", self._base(queue), (self.layout.wake, queue))])

    @translate_errors
    async def cleanup(self, params: RetentionParams) -> int:
        queues = await self._store.all_queues()
        removed = 0
        if params.max_age is not None:
            cutoff = num(params.now - params.max_age)
            removed += await self._delete_finished(queues, lambda q: (cutoff, ""))
        if params.keep_last is not None:
            keep = await self._newest_finished_per_queue(queues, params.keep_last)
            removed += await self._delete_finished(queues, lambda q: ("", keep.get(q, 0)))
        return removed

    async def _newest_finished_per_queue(self, queues: list[str], keep_last: int) -> dict[str, int]:
        """How many of each queue's newest finished jobs are among the newest `keep_last` overall.

        A read before the per-queue deletions; if jobs finish meanwhile, a queue keeps its
        newest ones, so retention may keep newer jobs than planned but never a live one.
        """
        if keep_last == 0:
            return {}
        pipe = self._store.client.pipeline(transaction=False)
        for q in queues:
            pipe.zrevrange(self.layout.index(q, "finished"), 0, keep_last - 1, withscores=True)
        newest = [
            (score, job_id, q)
            for q, reply in zip(queues, await pipe.execute(), strict=True)
            for job_id, score in reply
        ]
        keep: dict[str, int] = defaultdict(int)
        for _, _, q in heapq.nlargest(keep_last, newest):
            keep[q] += 1
        return keep

    async def _delete_finished(self, queues: list[str], which: Callable[[str], tuple[str, str | int]]) -> int:
        """Run cleanup.lua per queue with the (cutoff, keep) `which` gives, until nothing is left."""
        removed = 0
        while queues:
            calls = [Script("cleanup", self._base(q), (*which(q), BATCH)) for q in queues]
            outs = await self._store.run(calls)
            gone = [job_id for out in outs for job_id in out]
            if gone:
                await self._store.run([self._store.unregister(gone)])
            removed += len(gone)
            queues = [q for q, out in zip(queues, outs, strict=True) if len(out) == BATCH]
        return removed
