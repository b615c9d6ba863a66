"""Job events: what happened to which job, in the order the backend recorded it.

Live views (the API's server-sent events, the dashboard, `conveyor job --follow`)
read these instead of re-listing jobs: a backend writes each event in the same
atomic step as the change it describes, so a reader never sees a change
without its event or an event for a change that was rolled back. The stream
is bounded (the oldest events are trimmed), so it is a feed for live views,
not an audit log.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .job import JobState

FROM_OLDEST = "0"
"""A cursor before every event still kept: `events(FROM_OLDEST, ...)` reads the whole stream."""

DEFAULT_EVENTS_MAX = 10_000


class JobEventKind(enum.StrEnum):
    ADDED = "added"  # stored, in any first state
    STARTED = "started"  # claimed by a worker
    PROGRESS = "progress"  # a running job's percent, message or step changed (batched by the worker)
    RETRYING = "retrying"  # an attempt ended, another follows (it failed, was rate limited, its worker died)
    WAITING = "waiting"  # waits for its children
    REQUEUED = "requeued"  # queued again after ending or waiting (retried by hand, a parent's next step)
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REMOVED = "removed"  # deleted by hand (retention deletes silently)


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One change of one job. `cursor` resumes a reader right after this event.

    `state`, `percent` and `message` are the job's as of this event. `at` is
    the engine's time of the change, None when the change carried no time (a
    removal, progress written without one).
    """

    id: str
    cursor: str
    kind: JobEventKind
    job_id: str
    type: str
    queue: str
    tenant: str | None
    state: JobState
    percent: float
    message: str | None
    at: float | None


@dataclass(frozen=True, slots=True)
class EventBatch:
    """Events in the order recorded, and the cursor to pass to the next read.

    `missed` is True when events after the cursor read from were trimmed
    before this read could see them: the reader fell further behind than the
    stream keeps, and should read the jobs it shows afresh. (Redis reports it
    also when only the cursor's own event was trimmed; SQLite is exact.)
    """

    events: list[JobEvent]
    cursor: str
    missed: bool = False
