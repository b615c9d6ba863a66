"""`list_jobs` on Redis: an admin read that scans, not a query that seeks.

Each queue's `jobs` zset holds every job by enqueue sequence. A listing walks
the zsets of the wanted queues in batches (one pipelined round trip for the
ids, one for the hashes), filters in Python, and merges the queues by
created_at. The cost is proportional to the jobs scanned: a filter that
matches few of many jobs reads many hashes. That is fine for dashboards and the
CLI; it is not a path to call per job.

The cursor records, per queue, where that queue's walk resumes, so pages never
repeat or skip a job even when clocks of different producers disagree.

A listing of one parent's children reads the parent's children index instead
(in the order the parent counted them), so it costs as much as the parent has
children, whatever the size of their queues. Its cursor is the position there.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import deque
from dataclasses import dataclass, field

from ...errors import PayloadError
from ...job import Job, JobState
from ..base import JobFilter, JobPage
from .records import job_from_hash
from .store import Store

BATCH = 200


@dataclass
class _Walk:
    queue: str
    bound: int | None  # next seq to look at (inclusive); None: from the start of the order
    batch: int = BATCH  # jobs the next refill reads: a page's worth first, doubling up to BATCH
    exhausted: bool = False
    buffer: deque[tuple[int, Job]] = field(default_factory=deque)


def _matches(f: JobFilter, states: frozenset[JobState], job: Job) -> bool:
    if states and job.state not in states:
        return False
    if f.types and job.type not in f.types:
        return False
    if f.tenant is not None and job.tenant != f.tenant:
        return False
    if f.user_id is not None and job.user_id != f.user_id:
        return False
    if f.parent_id is not None and job.parent_id != f.parent_id:
        return False
    if f.roots_only and job.parent_id is not None:
        return False
    if f.created_from is not None and job.created_at < f.created_from:
        return False
    if f.created_to is not None and job.created_at >= f.created_to:
        return False
    if f.key is not None and job.key != f.key:
        return False
    if f.error_type and (job.error is None or job.error.type != f.error_type):
        return False
    if f.text:
        needle = f.text.lower()
        haystacks = [job.progress.message, job.error.message if job.error else None]
        return any(h is not None and needle in h.lower() for h in haystacks)
    return True


def _encode(bounds: dict[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(bounds, separators=(",", ":")).encode()).decode()


def _decode(cursor: str) -> dict[str, int]:
    try:
        bounds = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error) as exc:
        raise PayloadError(f"not a cursor from this listing: {cursor!r}") from exc
    if not isinstance(bounds, dict) or not all(isinstance(v, int) for v in bounds.values()):
        raise PayloadError(f"not a cursor from this listing: {cursor!r}")
    return bounds


async def _refill(store: Store, walks: list[_Walk], f: JobFilter) -> None:
    newest_first = not f.oldest_first
    states = frozenset(JobState(s) for s in f.states)
    pipe = store.client.pipeline(transaction=False)
    for w in walks:
        key = store.keys.index(w.queue, "jobs")
        if newest_first:
            top = "+inf" if w.bound is None else w.bound
            pipe.zrevrangebyscore(key, top, "-inf", start=0, num=w.batch, withscores=True)
        else:
            bottom = "-inf" if w.bound is None else w.bound
            pipe.zrangebyscore(key, bottom, "+inf", start=0, num=w.batch, withscores=True)
    scans: list[list[tuple[str, float]]] = await pipe.execute()
    pipe = store.client.pipeline(transaction=False)
    for w, scanned in zip(walks, scans, strict=True):
        for job_id, _ in scanned:
            pipe.hgetall(store.keys.job(w.queue, job_id))
    hashes = iter(await pipe.execute())
    for w, scanned in zip(walks, scans, strict=True):
        for _, score in scanned:
            h = next(hashes)
            seq = int(score)
            if h:
                job = job_from_hash(h)
                if _matches(f, states, job):
                    w.buffer.append((seq, job))
            w.bound = seq - 1 if newest_first else seq + 1
        w.exhausted = len(scanned) < w.batch
        w.batch = min(BATCH, w.batch * 2)


async def list_jobs(store: Store, f: JobFilter, limit: int, cursor: str | None) -> JobPage:
    if f.parent_id is not None:
        parent_queue = await store.queue_of(f.parent_id)
        if parent_queue is not None:
            return await _list_children(store, f, parent_queue, limit, cursor)
    # A page of `limit` needs at most limit + 1 jobs of each queue when every job matches;
    # reading BATCH hashes a queue for a page of 20 made a plain listing cost ten times more.
    first = min(BATCH, limit + 1)
    if cursor is not None:
        walks = [_Walk(q, bound, first) for q, bound in _decode(cursor).items()]
    else:
        queues = list(f.queues) if f.queues else await store.all_queues()
        walks = [_Walk(q, None, first) for q in queues]
    newest_first = not f.oldest_first
    taken: list[tuple[_Walk, int, Job]] = []
    while len(taken) <= limit:
        empty = [w for w in walks if not w.buffer and not w.exhausted]
        if empty:
            await _refill(store, empty, f)
            continue
        heads = [w for w in walks if w.buffer]
        if not heads:
            break
        choose = max if newest_first else min
        walk = choose(heads, key=lambda w: (w.buffer[0][1].created_at, w.buffer[0][0], w.queue))
        seq, job = walk.buffer.popleft()
        taken.append((walk, seq, job))
    if len(taken) <= limit:
        return JobPage([job for _, _, job in taken], None)
    extra_walk, extra_seq, extra_job = taken.pop()
    extra_walk.buffer.appendleft((extra_seq, extra_job))
    bounds: dict[str, int] = {}
    for w in walks:
        if w.buffer:
            bounds[w.queue] = w.buffer[0][0]
        elif not w.exhausted and w.bound is not None:
            bounds[w.queue] = w.bound
    return JobPage([job for _, _, job in taken], _encode(bounds))


async def _list_children(
    store: Store, f: JobFilter, parent_queue: str, limit: int, cursor: str | None
) -> JobPage:
    assert f.parent_id is not None
    kids = await store.hgetall(store.keys.kids(parent_queue, f.parent_id))
    order: list[tuple[int, str, str]] = []
    for child, entry in kids.items():
        _, _, ordinal, queue = entry.split("|", 3)
        if not f.queues or queue in f.queues:
            order.append((int(ordinal), child, queue))
    order.sort(reverse=not f.oldest_first)
    if cursor is not None:
        bound = _decode(cursor).get("position")
        if bound is None:
            raise PayloadError(f"not a cursor from this listing: {cursor!r}")
        order = [o for o in order if (o[0] > bound if f.oldest_first else o[0] < bound)]
    states = frozenset(JobState(s) for s in f.states)
    taken: list[tuple[int, Job]] = []
    for start in range(0, len(order), BATCH):
        batch = order[start : start + BATCH]
        pipe = store.client.pipeline(transaction=False)
        for _, child, queue in batch:
            pipe.hgetall(store.keys.job(queue, child))
        for (position, _, _), h in zip(batch, await pipe.execute(), strict=True):
            if h:
                job = job_from_hash(h)
                if _matches(f, states, job):
                    taken.append((position, job))
        if len(taken) > limit:
            break
    if len(taken) <= limit:
        return JobPage([job for _, job in taken], None)
    return JobPage([job for _, job in taken[:limit]], _encode({"position": taken[limit - 1][0]}))
