"""Where Conveyor keeps things in Redis.

Every key of one queue starts with the hash tag `{prefix:queue}`, so a Lua
script that changes a queue touches a single Redis Cluster slot; keys that
belong to no queue start with `{prefix}`. The Lua scripts build the same
names from the tag (see `lua/common.lua`): keep both in step.

    {p}:queues                 set    every queue that ever held a job or was paused
    {p}:ids                    hash   job id -> queue (finds a job's keys from its id)
    {p}:workers                hash   worker id -> WorkerInfo JSON
    {p}:workers:seen           zset   worker id by last heartbeat
    {p}:wake                   pub/sub channel: a queue name when it has new work
    {p:q}:job:<id>             hash   one job
    {p:q}:ready                zset   pending jobs, score priority * 2^40 + seq
    {p:q}:scheduled            zset   delayed and backing-off jobs, score run_at
    {p:q}:running              zset   claimed jobs, score lease_until
    {p:q}:finished             zset   completed/failed/cancelled jobs, score finished_at
    {p:q}:jobs                 zset   every job, score seq (listing order)
    {p:q}:seq                  string the queue's enqueue sequence
    {p:q}:counts               hash   state -> number of jobs, plus 'retrying'
    {p:q}:tenant:<tenant>      hash   the same counters for one tenant
    {p:q}:dedup                hash   dedup key -> id of the live job holding it
    {p:q}:errors:<id>          list   AttemptError JSON per failed attempt
    {p:q}:logs:<id>            list   {at, line} JSON, capped
    {p:q}:paused               string present while the queue is paused
    {p:q}:bag:<id>             hash   JSON [kind, item] -> "n|at|message", the job's error bag
    {p:q}:kids:<id>            hash   child id -> "gen|status|ordinal|child queue" (the job's children)
    {p:q}:spawns:<id>          hash   spawn key -> child id (unique per parent, in every state)
    {p:q}:unborn               hash   child id -> its enqueue record, counted by a parent of this
                                      queue but not yet confirmed stored in its own queue
    {p:q}:outbox               hash   job id -> JSON list of flow events not yet delivered
    {p:q}:void:<id>            string a child cancelled before it was stored: store it cancelled
    {p:q}:events               stream the queue's job events, trimmed to about events_max entries
"""

from __future__ import annotations

import re

from ...errors import ConfigurationError

_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class KeyLayout:
    """Key names for one prefix (one Conveyor deployment sharing a Redis database)."""

    def __init__(self, prefix: str) -> None:
        # ':' and braces would let two prefixes' hash tags collide ("a" + queue "b:c" vs "a:b" + "c").
        if not _PREFIX.fullmatch(prefix):
            raise ConfigurationError(
                f"Redis key prefix {prefix!r} must be 1-64 letters, digits, '_', '.' or '-'"
            )
        self.prefix = prefix
        self.base = "{" + prefix + "}"
        self.queues = self.base + ":queues"
        self.ids = self.base + ":ids"
        self.workers = self.base + ":workers"
        self.wake = self.base + ":wake"

    def queue(self, queue: str) -> str:
        """The hash-tagged base of every key of `queue`."""
        return "{" + self.prefix + ":" + queue + "}"

    def job(self, queue: str, job_id: str) -> str:
        return f"{self.queue(queue)}:job:{job_id}"

    def errors(self, queue: str, job_id: str) -> str:
        return f"{self.queue(queue)}:errors:{job_id}"

    def logs(self, queue: str, job_id: str) -> str:
        return f"{self.queue(queue)}:logs:{job_id}"

    def index(self, queue: str, name: str) -> str:
        """A per-queue key by suffix: ready, scheduled, running, finished, jobs, counts, paused..."""
        return f"{self.queue(queue)}:{name}"

    def bag(self, queue: str, job_id: str) -> str:
        return f"{self.queue(queue)}:bag:{job_id}"

    def kids(self, queue: str, job_id: str) -> str:
        return f"{self.queue(queue)}:kids:{job_id}"

    def events(self, queue: str) -> str:
        return f"{self.queue(queue)}:events"

    def tenant_counts(self, queue: str, tenant: str) -> str:
        return f"{self.queue(queue)}:tenant:{tenant}"

    def owns(self, key: str) -> bool:
        """True for every key this layout can write (tests use it to catch leaks)."""
        return key.startswith((self.base + ":", "{" + self.prefix + ":"))
