"""Flows on Redis: parents and children in different queues, so in different cluster slots.

A parent and its child may live in different slots, so no script can end a
child and update its parent together. Instead (see docs/backends.md):

- Ending (or retrying) a child appends an event to the child's entry in its
  queue's outbox, in the same script. Python then delivers the child's events
  to a `tell_parent` call in the parent's queue and removes the entry
  (`ack`). The parent keeps, per child, the life it knows of and whether it
  ended, so delivering the same events twice changes nothing; `recover`
  delivers whatever a dead process left in any outbox. A parent that ends
  (wakes complete, or fails for a child) posts its own event, and so on up.
- Cancelling a job's descendants walks down from Python: each job's children
  index (`kids`, in its own slot) lists its children with their queues, and
  `cancel_kids` cancels one queue's share of a level (idempotent).
- Children are counted by their parent (`adopt`, in the parent's slot) before
  they are stored in their own queue; the count and the child's enqueue record
  (`unborn`) are written together, and `born` clears the record once the
  child is stored (or uncounts a child that was refused for its dedup key).
  `recover` stores children left unborn by a process that died in between.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from ...errors import InvalidStateTransition
from ...job import Job, NewJob
from ..base import EnqueueResult
from .keys import KeyLayout
from .records import enqueue_args, job_from_hash, new_job_record, num
from .store import Command, Script, Store

CHUNK = 500
UNBORN_GRACE = 60.0  # seconds a child may stay unborn before recover stores it itself

Posted = list[tuple[str, str, str]]  # (queue, job id, its outbox entry as posted)


def chunks(items: Sequence[Any], size: int = CHUNK) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def posted(queue: str, flat: Sequence[str]) -> Posted:
    """A script's `posted_reply()` (flat id, entry, ...) as (queue, id, entry) triples."""
    return [(queue, flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def _gone(parent_id: str) -> InvalidStateTransition:
    return InvalidStateTransition(f"parent job {parent_id} is missing, finished or cancelled")


class Flows:
    """Parent/child bookkeeping across queues, driven from Python."""

    def __init__(self, store: Store, keys: KeyLayout) -> None:
        self._store = store
        self.keys = keys

    def _base(self, queue: str) -> str:
        return self.keys.queue(queue)

    # delivering events ---------------------------------------------------------------------

    async def deliver(self, entries: Posted, now: float) -> None:
        """Apply outbox entries to the parents (and descendants) they concern, then remove them.

        Each round may end parents, whose own entries are delivered in the next round.
        Entries are removed only once the whole chain is delivered: a call that is
        interrupted (cancelled, connection lost) and then replayed finds its job's
        entry still there, and each script on the way reposts what it finds, so the
        replay finishes the delivery; `recover` is only the last resort.
        """
        delivered: dict[tuple[str, str], str] = {}
        while entries:
            latest: dict[tuple[str, str], str] = {}
            for queue, job_id, value in entries:
                known = latest.get((queue, job_id))
                if known is None or len(value) > len(known):  # an entry only grows until removed
                    latest[(queue, job_id)] = value
            latest = {k: v for k, v in latest.items() if delivered.get(k) != v}
            delivered.update(latest)
            events = {key: json.loads(value) for key, value in latest.items()}
            more: Posted = []
            downs = [key for key, evs in events.items() if any(e.get("down") for e in evs)]
            if downs:
                more += await self.cancel_below(downs, now)
            tell: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for (queue, job_id), evs in events.items():
                told = [e for e in evs if "parent" in e]
                if told:
                    tell[told[0]["pq"]].append({"id": job_id, "q": queue, "events": told})
            calls = [
                (pq, Script("tell_parent", self._base(pq), (num(now), self.keys.wake, pq, json.dumps(c))))
                for pq, items in tell.items()
                for c in chunks(items)
            ]
            if calls:
                outs = await self._store.run(call for _, call in calls)
                for (pq, _), out in zip(calls, outs, strict=True):
                    more += posted(pq, out)
            entries = more
        acks: dict[str, list[str]] = defaultdict(list)
        for (queue, job_id), value in delivered.items():
            acks[queue] += [job_id, value]
        if acks:
            await self._store.run(
                Script("ack", self._base(q), tuple(c))
                for q, flat in acks.items()
                for c in chunks(flat, 2 * CHUNK)
            )

    async def cancel_below(self, roots: Iterable[tuple[str, str]], now: float) -> Posted:
        """Cancel every unfinished descendant of the (queue, job id) roots, level by level."""
        level = list(roots)
        seen = set(level)
        found: Posted = []
        while level:
            pipe = self._store.client.pipeline(transaction=False)
            for queue, job_id in level:
                pipe.hgetall(self.keys.kids(queue, job_id))
            by_queue: dict[str, list[list[str]]] = defaultdict(list)
            for kids in await pipe.execute():
                for child, entry in kids.items():
                    _, status, _, child_queue = entry.split("|", 3)
                    by_queue[child_queue].append([child, "1" if status == "u" else "0"])
            calls = [
                (q, Script("cancel_kids", self._base(q), (num(now), json.dumps(c))))
                for q, items in by_queue.items()
                for c in chunks(items)
            ]
            level = []
            if not calls:
                break
            outs = await self._store.run(call for _, call in calls)
            for (queue, _), (below, flat) in zip(calls, outs, strict=True):
                found += posted(queue, flat)
                for child in below:
                    if (queue, child) not in seen:
                        seen.add((queue, child))
                        level.append((queue, child))
        return found

    # storing children ----------------------------------------------------------------------

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[EnqueueResult]:
        """Store jobs some of which have parents; parents in the batch come before their children.

        Children of parents outside the batch are counted first, all of them before
        anything is stored, so a refused parent stores nothing. Then the batch is
        stored level by level: each queue's script stores that level's jobs and counts
        the children of the ones it stored, so a parent never exists without its count.
        """
        level: dict[str, int] = {}
        queue_of: dict[str, str] = {}
        outside: set[str] = set()
        for job in jobs:
            queue_of[job.id] = job.queue
            if job.parent_id is not None and job.parent_id in level:
                level[job.id] = level[job.parent_id] + 1
            else:
                level[job.id] = 0
                if job.parent_id is not None:
                    outside.add(job.parent_id)
        new_queues = {job.queue for job in jobs} - self._store.known_queues
        if new_queues:
            await self._store.run([("SADD", self.keys.queues, *new_queues)])
            self._store.known_queues |= new_queues
        found = await self._store.queues_of(sorted(outside))
        for parent_id in sorted(outside - found.keys()):
            raise _gone(parent_id)
        queue_of.update(found)
        records = {
            job.id: new_job_record(job, None if job.parent_id is None else queue_of[job.parent_id])
            for job in jobs
        }
        results: dict[str, EnqueueResult] = {}
        counted: dict[str, NewJob] = {}  # children their parent counted, not yet confirmed stored

        def adoption(kids: Sequence[NewJob]) -> str:
            by_parent: dict[str, list[list[str]]] = defaultdict(list)
            for kid in kids:
                assert kid.parent_id is not None
                unborn = {
                    "parent": kid.parent_id,
                    "q": kid.queue,
                    "at": kid.created_at,
                    "spawn": kid.spawn_key or "",
                    "record": records[kid.id],
                }
                by_parent[kid.parent_id].append([kid.id, kid.queue, kid.spawn_key or "", json.dumps(unborn)])
            return json.dumps([{"parent": p, "kids": ks} for p, ks in by_parent.items()])

        def note(kids: Sequence[NewJob], adopted: list[str]) -> None:
            """adopt's answer: a spawn key's holder is the result; other children are counted."""
            for kid, holder in zip(kids, adopted, strict=True):
                if holder:
                    results[kid.id] = EnqueueResult(holder, False)
                else:
                    counted[kid.id] = kid

        def born(kid: NewJob, stored: bool) -> tuple[str, list[str]]:
            assert kid.parent_id is not None
            flag = "1" if stored else "0"
            return queue_of[kid.parent_id], [kid.parent_id, kid.id, flag, kid.spawn_key or ""]

        # Children of parents outside the batch: counted before anything is stored.
        first = [job for job in jobs if job.parent_id in outside]
        if first:
            by_parent_queue: dict[str, list[NewJob]] = defaultdict(list)
            for kid in first:
                by_parent_queue[queue_of[str(kid.parent_id)]].append(kid)
            calls = [
                (c, Script("enqueue", self._base(q), enqueue_args(self.keys.wake, q, [], adoption(c))))
                for q, kids in by_parent_queue.items()
                for c in chunks(kids)
            ]
            outs = await self._store.run(call for _, call in calls)
            refused = [adopted for _, adopted, _ in outs if isinstance(adopted, str)]
            for (kids, _), (_, adopted, _) in zip(calls, outs, strict=True):
                if not isinstance(adopted, str):
                    note(kids, adopted)
            if refused:
                await self._born([born(kid, False) for kid in counted.values()])
                raise _gone(refused[0].removeprefix("gone:"))

        entries: Posted = []
        confirm: list[tuple[str, list[str]]] = []  # born.lua items for children just stored
        failure: InvalidStateTransition | None = None
        for depth in range(max(level.values()) + 1):
            here = [j for j in jobs if level[j.id] == depth and j.id not in results]
            below = [j for j in jobs if level[j.id] == depth + 1 and j.id not in results]
            storing = {j.id for j in here}
            orphans = [k for k in below if k.parent_id not in storing]  # parent refused its spawn key
            if orphans:
                failure = _gone(str(orphans[0].parent_id))
                break
            by_queue: dict[str, list[NewJob]] = defaultdict(list)
            for job in here:
                by_queue[job.queue].append(job)
            plan: list[tuple[Sequence[NewJob], list[NewJob]]] = []
            items: list[Script | Command] = list(self._born_calls(confirm))
            confirm = []
            for queue, queued in by_queue.items():
                for chunk in chunks(queued):
                    ids = [j.id for j in chunk]
                    kids = [k for k in below if k.parent_id in set(ids)]
                    plan.append((chunk, kids))
                    args = enqueue_args(
                        self.keys.wake, queue, [records[i] for i in ids], adoption(kids) if kids else ""
                    )
                    items += self._store.storing(queue, ids, args)
            outs = await self._store.run(items)
            outs = outs[len(outs) - len(plan) :]
            for (chunk, kids), (collisions, adopted, flat) in zip(plan, outs, strict=True):
                entries += posted(chunk[0].queue, flat)
                holders = dict(zip(collisions[::2], collisions[1::2], strict=True))
                for position, job in enumerate(chunk, 1):
                    holder = holders.get(position)
                    results[job.id] = EnqueueResult(holder or job.id, holder is None)
                    if counted.pop(job.id, None) is not None:
                        confirm.append(born(job, holder is None))
                if isinstance(adopted, str):
                    failure = failure or _gone(adopted.removeprefix("gone:"))
                elif kids:
                    note(kids, adopted)
            if failure is not None:
                break
        # Children counted but not stored (a later level was refused) are uncounted.
        await self._born(confirm + [born(kid, False) for kid in counted.values()])
        refused_ids = [j.id for j in jobs if j.id in results and not results[j.id].created]
        if refused_ids:
            await self._store.run([self._store.unregister(refused_ids)])
        if entries:
            await self.deliver(entries, max(j.created_at for j in jobs))
        if failure is not None:
            raise failure
        return [results[j.id] for j in jobs]

    def _born_calls(self, items: Sequence[tuple[str, list[str]]]) -> list[Script]:
        by_queue: dict[str, list[list[str]]] = defaultdict(list)
        for queue, item in items:
            by_queue[queue].append(item)
        return [
            Script("born", self._base(q), (json.dumps(c),))
            for q, entries in by_queue.items()
            for c in chunks(entries)
        ]

    async def _born(self, items: Sequence[tuple[str, list[str]]]) -> None:
        calls = self._born_calls(items)
        if calls:
            await self._store.run(calls)

    # recovery ------------------------------------------------------------------------------

    async def sweep(self, queues: Sequence[str], now: float) -> None:
        """Finish what dead processes left: undelivered outbox entries, children left unborn."""
        if not queues:
            return
        pipe = self._store.client.pipeline(transaction=False)
        for q in queues:
            pipe.hgetall(self.keys.index(q, "outbox"))
            pipe.hgetall(self.keys.index(q, "unborn"))
        replies = await pipe.execute()
        entries = [
            (q, job_id, value)
            for q, box in zip(queues, replies[::2], strict=True)
            for job_id, value in box.items()
        ]
        await self.deliver(entries, now)
        late = [
            (q, json.loads(value))
            for q, waiting in zip(queues, replies[1::2], strict=True)
            for value in waiting.values()
        ]
        late = [(q, u) for q, u in late if u["at"] < now - UNBORN_GRACE]
        if late:
            await self._store_unborn(late, now)

    async def _store_unborn(self, late: list[tuple[str, dict[str, Any]]], now: float) -> None:
        """Store children counted by their parent (in queue q) whose producer never stored them."""
        pipe = self._store.client.pipeline(transaction=False)
        for q, u in late:
            pipe.hget(self.keys.kids(q, u["parent"]), u["record"][0])
        statuses = [None if e is None else e.split("|", 3)[1] for e in await pipe.execute()]
        confirm: list[tuple[str, list[str]]] = []
        todo: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        for (q, u), status in zip(late, statuses, strict=True):
            if status == "u":  # else it was stored: it has ended, or was confirmed
                todo[u["q"]].append((q, u))
            else:
                confirm.append((q, [u["parent"], u["record"][0], "1", u["spawn"]]))
        items: list[Script | Command] = []
        plan = []
        for queue, waiting in todo.items():
            for chunk in chunks(waiting):
                ids = [u["record"][0] for _, u in chunk]
                plan.append(chunk)
                args = enqueue_args(self.keys.wake, queue, [u["record"] for _, u in chunk])
                items += self._store.storing(queue, ids, args)
        entries: Posted = []
        if items:
            outs = await self._store.run(items)
            for chunk, (collisions, _, flat) in zip(plan, outs, strict=True):
                entries += posted(chunk[0][1]["q"], flat)
                refused = set(collisions[::2])
                for position, (q, u) in enumerate(chunk, 1):
                    stored = "0" if position in refused else "1"
                    confirm.append((q, [u["parent"], u["record"][0], stored, u["spawn"]]))
        await self._born(confirm)
        if entries:
            await self.deliver(entries, now)

    # reading -------------------------------------------------------------------------------

    async def tree(self, job_id: str) -> list[Job]:
        """The job and its descendants, by creation time, then parents before children."""
        queue = await self._store.queue_of(job_id)
        if queue is None:
            return []
        jobs: dict[str, Job] = {}
        order: dict[str, list[tuple[int, str]]] = {}  # job id -> (ordinal, child id)
        level = [(queue, job_id)]
        seen = {job_id}
        while level:
            pipe = self._store.client.pipeline(transaction=False)
            for q, i in level:
                pipe.hgetall(self.keys.job(q, i))
                pipe.hgetall(self.keys.kids(q, i))
            replies = await pipe.execute()
            nxt = []
            for (_, i), h, kids in zip(level, replies[::2], replies[1::2], strict=True):
                if not h:
                    continue
                jobs[i] = job_from_hash(h)
                order[i] = []
                for child, entry in kids.items():
                    _, _, ordinal, child_queue = entry.split("|", 3)
                    order[i].append((int(ordinal), child))
                    if child not in seen:
                        seen.add(child)
                        nxt.append((child_queue, child))
            level = nxt
        if job_id not in jobs:
            return []
        preorder: dict[str, int] = {}
        stack = [job_id]
        while stack:
            i = stack.pop()
            if i not in jobs or i in preorder:
                continue
            preorder[i] = len(preorder)
            stack.extend(child for _, child in sorted(order[i], reverse=True))
        return sorted((jobs[i] for i in preorder), key=lambda j: (j.created_at, preorder[j.id]))
