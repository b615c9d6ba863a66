"""Mapping between SQLite rows and Conveyor's typed records."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from ...job import AttemptError, Job, NewJob, PhaseSpec, Progress
from ...schedules import MissedPolicy, Schedule
from ..base import POLICIES, STATES, THEN_ACTIONS

JOB_COLUMNS = (
    "id, type, queue, payload, state, priority, attempts, max_attempts, run_at, created_at,"
    " started_at, finished_at, lease_until, worker_id, progress_percent, progress_message,"
    " progress_step, result, error, dedup_key, tenant, user_id, tags, parent_id, timeout,"
    " cancel_requested, failure_policy, phase, weight, phases, children_total, children_pending,"
    " stage, then_action, rate_key, group_key"
)

INSERT_JOB = (
    "INSERT INTO conveyor_jobs (id, type, queue, payload, state, priority, max_attempts, run_at,"
    " created_at, dedup_key, tenant, user_id, tags, timeout, parent_id, spawn_key, failure_policy,"
    " phase, weight, then_action, rate_key, rate_limit, rate_per, group_key, group_limit)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def new_job_params(job: NewJob) -> tuple[Any, ...]:
    return (
        job.id,
        job.type,
        job.queue,
        job.payload_json,
        job.state.value,
        job.priority,
        job.max_attempts,
        job.run_at,
        job.created_at,
        job.dedup_key,
        job.tenant,
        job.user_id,
        json.dumps(list(job.tags)) if job.tags else None,
        job.timeout,
        job.parent_id,
        job.spawn_key,
        job.failure_policy.value,
        job.phase,
        job.weight,
        job.then.value,
        job.key,
        job.rate_limit,
        job.rate_per,
        job.group,
        job.group_limit,
    )


def error_to_json(error: AttemptError | None) -> str | None:
    return None if error is None else json.dumps(asdict(error))


def error_from_json(text: str | None) -> AttemptError | None:
    return None if text is None else AttemptError(**json.loads(text))


def row_to_job(row: tuple[Any, ...]) -> Job:
    return Job(
        id=row[0],
        type=row[1],
        queue=row[2],
        payload=json.loads(row[3]),
        state=STATES[row[4]],
        priority=row[5],
        attempts=row[6],
        max_attempts=row[7],
        run_at=row[8],
        created_at=row[9],
        started_at=row[10],
        finished_at=row[11],
        lease_until=row[12],
        worker_id=row[13],
        progress=Progress(row[14], row[15], row[16]),
        result=None if row[17] is None else json.loads(row[17]),
        error=error_from_json(row[18]),
        dedup_key=row[19],
        tenant=row[20],
        user_id=row[21],
        tags=tuple(json.loads(row[22])) if row[22] else (),
        parent_id=row[23],
        timeout=row[24],
        cancel_requested=bool(row[25]),
        failure_policy=POLICIES[row[26]],
        phase=row[27],
        weight=row[28],
        phases=phases_from_json(row[29]),
        children_total=row[30],
        children_pending=row[31],
        stage=row[32],
        then=THEN_ACTIONS[row[33]],
        key=row[34],
        group=row[35],
    )


def phases_to_json(phases: Mapping[str, PhaseSpec]) -> str:
    return json.dumps({name: [spec.weight, spec.total] for name, spec in phases.items()})


def phases_from_json(text: str | None) -> dict[str, PhaseSpec]:
    if not text:
        return {}
    return {name: PhaseSpec(weight, total) for name, (weight, total) in json.loads(text).items()}


SCHEDULE_COLUMNS = (
    "name, job_type, cron, every, payload, options, jitter, missed, next_run_at, last_run_at, last_job_id"
)
_SCHEDULE_OPTIONS = ("priority", "queue", "tenant", "user_id")


def schedule_row(s: Schedule) -> tuple[Any, ...]:
    options = {key: getattr(s, key) for key in _SCHEDULE_OPTIONS if getattr(s, key) is not None}
    return (
        s.name,
        s.job_type,
        s.cron,
        s.every,
        json.dumps(dict(s.payload)),
        json.dumps(options),
        s.jitter,
        s.missed.value,
        s.next_run_at,
    )


def schedule_from_row(row: tuple[Any, ...]) -> Schedule:
    return Schedule(
        name=row[0],
        job_type=row[1],
        cron=row[2],
        every=row[3],
        payload=json.loads(row[4]),
        jitter=row[6],
        missed=MissedPolicy(row[7]),
        next_run_at=row[8],
        last_run_at=row[9],
        last_job_id=row[10],
        **json.loads(row[5]),
    )
