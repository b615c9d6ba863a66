"""Jobs as Redis hashes, and the JSON the Lua scripts read.

Every value is a string. Times are written with `repr(float)`, which round-trips
exactly; Lua never formats a float (its own conversion keeps 14 digits), so a
stored run_at is exactly the engine's. Absent fields mean None.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from ...job import (
    NO_PROGRESS,
    AttemptError,
    BagEntry,
    DedupMode,
    FailurePolicy,
    Job,
    LogLine,
    NewJob,
    PhaseSpec,
    Progress,
    ThenAction,
)
from ..base import POLICIES, STATES, THEN_ACTIONS, ProgressUpdate, Settlement


def num(value: float) -> str:
    return repr(float(value))


def _opt_float(value: str | None) -> float | None:
    return None if value is None else float(value)


PHASE = "ph:"  # hash fields "ph:<name>" -> "weight|total": the phases a job declared


def new_job_record(job: NewJob, parent_queue: str | None = None) -> list[str]:
    """One job as enqueue.lua reads it: what it indexes by, then the hash as stored.

    The items: id, state, priority, run_at, dedup key or '', tenant or '', '1'
    for a child else '', dedup mode ('' for live), until when a throttled key
    stays taken or '', the length n of the field/value list, then those n
    items. Records travel as plain ARGV items, not JSON: Redis then parses no
    JSON per call, and a bulk call's arguments are packed by hiredis in C.

    Built directly as a list: this runs once per job of every bulk enqueue. Flow
    fields are written only when they differ from their defaults. The first nine
    fields are always there, in this order: enqueue.lua reads type and created_at
    by position.
    """
    state, priority, run_at = job.state.value, str(job.priority), num(job.run_at)
    flat = [
        *("id", job.id, "type", job.type, "queue", job.queue, "payload", job.payload_json),
        *("state", state, "priority", priority, "run_at", run_at),
        *("max_attempts", str(job.max_attempts), "created_at", num(job.created_at)),
    ]
    for name, value in (
        ("dedup_key", job.dedup_key),
        ("tenant", job.tenant),
        ("user_id", job.user_id),
        ("parent_id", job.parent_id),
    ):
        if value is not None:
            flat += (name, value)
    if job.tags:
        flat += ("tags", json.dumps(list(job.tags)))
    if job.timeout is not None:
        flat += ("timeout", num(job.timeout))
    if job.parent_id is not None:
        flat += ("parent_queue", parent_queue or job.queue)
        if job.spawn_key is not None:
            flat += ("spawn_key", job.spawn_key)
    if job.failure_policy is not FailurePolicy.FAIL_PARENT:
        flat += ("policy", job.failure_policy.value)
    if job.phase is not None:
        flat += ("phase", job.phase)
    if job.weight != 1.0:
        flat += ("weight", num(job.weight))
    if job.then is not ThenAction.COMPLETE:
        flat += ("then", job.then.value)
    if job.key is not None:
        flat += ("key", job.key)
        if job.rate_limit is not None and job.rate_per is not None:
            flat += ("rate_limit", str(job.rate_limit), "rate_per", num(job.rate_per))
    if job.group is not None:
        flat += ("group", job.group)
        if job.group_limit is not None:
            flat += ("group_limit", str(job.group_limit))
    mode, until = "", ""
    if job.dedup is not DedupMode.LIVE:
        mode = job.dedup.value
        until = "" if job.dedup_until is None else num(job.dedup_until)
    child = "" if job.parent_id is None else "1"
    head = [job.id, state, priority, run_at, job.dedup_key or "", job.tenant or "", child, mode, until]
    return [*head, str(len(flat)), *flat]


def enqueue_args(wake: str, queue: str, records: Sequence[Sequence[str]], adoption: str = "") -> list[str]:
    """enqueue.lua's ARGV: the wake channel, the queue, adoption groups or '', the count, the records."""
    args = [wake, queue, adoption, str(len(records))]
    for record in records:
        args += record
    return args


# Where a record (new_job_record) holds what differs between the jobs of a batch.
RECORD_IDS = (0, 11)  # the head's id, and the id in the field/value list
RECORD_PAYLOAD = 17


def batch_args(
    wake: str, queue: str, record: list[str], ids: Sequence[str], payloads: Sequence[str]
) -> list[str]:
    """enqueue_args for jobs of a batch: `record` (the batch template's) is copied per job.

    The record is changed in place for each job, so the caller builds it once per batch.
    """
    args = [wake, queue, "", str(len(ids))]
    for job_id, payload in zip(ids, payloads, strict=True):
        record[RECORD_IDS[0]] = record[RECORD_IDS[1]] = job_id
        record[RECORD_PAYLOAD] = payload
        args += record
    return args


def error_json(error: AttemptError) -> str:
    return json.dumps(asdict(error))


def error_from_json(text: str) -> AttemptError:
    return AttemptError(**json.loads(text))


def settlement_fields(s: Settlement) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "kind": s.kind.value,
        "id": s.job_id,
        "worker": s.worker_id,
        "attempt": s.attempt,
    }
    if s.result_json is not None:
        fields["result"] = s.result_json
    if s.error is not None:
        fields["error"] = error_json(s.error)
    if s.run_at is not None:
        fields["run_at"] = num(s.run_at)
    if s.then is not None:
        fields["then"] = s.then.value
    return fields


def progress_fields(u: ProgressUpdate) -> dict[str, str]:
    fields = {"id": u.job_id}
    if u.percent is not None:
        fields["percent"] = num(u.percent)
    if u.message is not None:
        fields["message"] = u.message
    if u.step is not None:
        fields["step"] = u.step
    return fields


def log_entry(line: LogLine) -> str:
    return json.dumps({"at": line.at, "line": line.line})


def log_from_entry(job_id: str, text: str) -> LogLine:
    entry = json.loads(text)
    return LogLine(job_id, entry["at"], entry["line"])


def phase_value(spec: PhaseSpec) -> str:
    return f"{num(spec.weight)}|{num(spec.total)}"


def phases_from_hash(h: Mapping[str, str]) -> dict[str, PhaseSpec]:
    phases = {}
    for name, value in h.items():
        if name.startswith(PHASE):
            weight, total = value.split("|")
            phases[name[len(PHASE) :]] = PhaseSpec(float(weight), float(total))
    return phases


def bag_field(entry: BagEntry) -> str:
    return json.dumps([entry.kind, entry.item])


def bag_entries(job_id: str, h: Mapping[str, str]) -> list[tuple[float, int, BagEntry]]:
    """A job's bag hash as (at, n, entry): n is the order in which its entries were first added."""
    entries = []
    for name, value in h.items():
        kind, item = json.loads(name)
        n, at, message = value.split("|", 2)
        entries.append((float(at), int(n), BagEntry(job_id, kind, message, item, float(at))))
    return entries


def job_from_hash(h: Mapping[str, str]) -> Job:
    get = h.get
    result, error, tags = get("result"), get("error"), get("tags")
    percent, message, step = get("percent"), get("message"), get("step")
    progress = NO_PROGRESS
    if percent is not None or message is not None or step is not None:
        progress = Progress(float(percent or 0.0), message, step)
    return Job(
        id=h["id"],
        type=h["type"],
        queue=h["queue"],
        payload=json.loads(h["payload"]),
        state=STATES[h["state"]],
        priority=int(h["priority"]),
        attempts=int(h["attempts"]),
        max_attempts=int(h["max_attempts"]),
        run_at=float(h["run_at"]),
        created_at=float(h["created_at"]),
        started_at=_opt_float(get("started_at")),
        finished_at=_opt_float(get("finished_at")),
        lease_until=_opt_float(get("lease_until")),
        worker_id=get("worker_id"),
        progress=progress,
        result=None if result is None else json.loads(result),
        error=None if error is None else error_from_json(error),
        dedup_key=get("dedup_key"),
        tenant=get("tenant"),
        user_id=get("user_id"),
        tags=tuple(json.loads(tags)) if tags else (),
        parent_id=get("parent_id"),
        timeout=_opt_float(get("timeout")),
        cancel_requested=get("cancel") == "1",
        failure_policy=POLICIES[get("policy", "fail_parent")],
        phase=get("phase"),
        weight=float(get("weight", 1.0)),
        phases=phases_from_hash(h),
        children_total=int(get("total", 0)),
        children_pending=int(get("left", 0)),
        stage=int(get("stage", 0)),
        then=THEN_ACTIONS[get("then", "complete")],
        key=get("key"),
        group=get("group"),
    )
