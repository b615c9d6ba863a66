"""Schedules on Redis: one tick, one job, though the job lives in another slot.

Schedules are kept under the global tag `{prefix}`, but the job a tick fires
belongs to its queue's slot, so no script can both win the tick and store the
job. Exactly one job per tick comes from three steps:

1. `schedule_tick.lua` (global slot) compares and sets the next tick and, in the
   same script, records the tick's job in the ledger (`{p}:schedules:fired`,
   job id -> queue and enqueue record) and its id -> queue lookup. Only one
   caller wins a tick, so only one ledger entry exists per tick.
2. The winner stores the job with `enqueue.lua` in the queue's slot, which is
   idempotent on the job id (a replayed call finds the id in `{p:q}:jobs`),
   then deletes the ledger entry.
3. `recover` stores the jobs of ledger entries older than `LEDGER_GRACE` (the
   winner died between 1 and 2) whose id is still in the lookup; a job that was
   stored and since removed has left the lookup, so it is not brought back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ...job import NewJob
from ...schedules import MissedPolicy, Schedule
from .records import enqueue_args, new_job_record, num
from .store import Command, Script, Store, translate_errors

LEDGER_GRACE = 60.0  # seconds a fired tick's job may take to be stored before recover stores it
_OPTIONS = ("priority", "queue", "tenant", "user_id")


def _definition(s: Schedule) -> str:
    """Everything but the times, as stored; `timing` is what decides whether the next tick resets."""
    fields: dict[str, Any] = {
        "job_type": s.job_type,
        "cron": s.cron,
        "every": s.every,
        "payload": dict(s.payload),
        "jitter": s.jitter,
        "missed": s.missed.value,
        "timing": json.dumps([s.cron, s.every, s.jitter]),
    }
    fields.update({key: getattr(s, key) for key in _OPTIONS if getattr(s, key) is not None})
    return json.dumps(fields)


def _schedule(name: str, definition: str, next_run_at: str, ran: str | None, job: str | None) -> Schedule:
    fields = json.loads(definition)
    del fields["timing"]
    fields["missed"] = MissedPolicy(fields["missed"])
    return Schedule(
        name=name,
        next_run_at=float(next_run_at),
        last_run_at=None if ran is None else float(ran),
        last_job_id=job,
        **fields,
    )


class RedisSchedules:
    """The schedule methods of `RedisBackend`."""

    _store: Store
    where: str

    def _store_fired(self, fired: dict[str, str]) -> Iterator[Script | Command]:
        """Store ledger entries' jobs (idempotent on their ids), then drop the entries."""
        layout = self._store.keys
        if not fired:
            return
        entries = {job_id: json.loads(entry) for job_id, entry in fired.items()}
        yield ("SADD", layout.queues, *{e["queue"] for e in entries.values()})
        for e in entries.values():
            args = enqueue_args(layout.wake, e["queue"], [e["record"]])
            yield Script("enqueue", layout.queue(e["queue"]), args)
        yield ("HDEL", layout.base + ":schedules:fired", *entries)

    @translate_errors
    async def upsert_schedule(self, schedule: Schedule) -> None:
        args = (schedule.name, _definition(schedule), num(schedule.next_run_at))
        await self._store.run([Script("schedule_put", self._store.keys.base, args)])

    @translate_errors
    async def schedules(self) -> list[Schedule]:
        base = self._store.keys.base + ":schedules"
        pipe = self._store.client.pipeline(transaction=False)
        for key in (base, base + ":next", base + ":ran", base + ":job"):
            pipe.hgetall(key)
        definitions, nexts, ran, jobs = await pipe.execute()
        return [
            _schedule(name, definitions[name], nexts[name], ran.get(name), jobs.get(name))
            for name in sorted(definitions)
            if name in nexts
        ]

    @translate_errors
    async def remove_schedule(self, name: str) -> bool:
        (removed,) = await self._store.run([Script("schedule_drop", self._store.keys.base, (name,))])
        return bool(removed)

    @translate_errors
    async def claim_tick(self, name: str, tick: float, next_run_at: float, job: NewJob | None) -> bool:
        """Win the tick (global slot), then store its job (the queue's slot): see the module docstring."""
        base = self._store.keys.base
        job_args: tuple[str, ...] = ("", "", "")
        entry = ""
        if job is not None:
            entry = json.dumps({"queue": job.queue, "at": job.created_at, "record": new_job_record(job)})
            job_args = (job.id, job.queue, entry)
        args = (name, num(tick), num(next_run_at), *job_args)
        (won,) = await self._store.run([Script("schedule_tick", base, args)])
        if won and job is not None:
            await self._store.run(self._store_fired({job.id: entry}))
        return bool(won)

    async def _replay_fired_ticks(self, now: float) -> None:
        """Part of `recover`: store the jobs of ticks whose winner died before storing them."""
        layout = self._store.keys
        ledger = await self._store.hgetall(layout.base + ":schedules:fired")
        old = [i for i, entry in ledger.items() if json.loads(entry)["at"] < now - LEDGER_GRACE]
        if not old:
            return
        pipe = self._store.client.pipeline(transaction=False)
        pipe.hmget(layout.ids, old)
        (queues,) = await pipe.execute()
        fired = {i: ledger[i] for i, queue in zip(old, queues, strict=True) if queue is not None}
        gone = [i for i in old if i not in fired]  # stored, then removed: never bring it back
        commands: list[Script | Command] = [*self._store_fired(fired)]
        if gone:
            commands.append(("HDEL", layout.base + ":schedules:fired", *gone))
        await self._store.run(commands)
