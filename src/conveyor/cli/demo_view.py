"""How `conveyor demo` shows its jobs: a live board on a terminal, sparse plain lines elsewhere.

CI logs keep every line, so off a terminal the demo prints at most one line a
second, and only when something changed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ..job import Job, JobState
from ..tracker import TrackerNode
from .output import STATE_STYLES, job_message

PLAIN_INTERVAL = 1.0


@dataclass(frozen=True)
class BoardRow:
    """One watched job as the board shows it.

    A flow's percent and message come from its tracker; a job that enqueues
    others outside its flow (a schedule tick) is followed by those jobs too.
    """

    label: str
    job: Job
    tracker: TrackerNode | None
    followed: Sequence[Job] = ()

    @property
    def state(self) -> str:
        if self.job.state is JobState.COMPLETED and not self.finished:
            return JobState.RUNNING.value
        return self.job.display_state

    @property
    def finished(self) -> bool:
        return self.job.state.is_finished and all(j.state.is_finished for j in self.followed)

    @property
    def percent(self) -> float:
        if self.followed:
            return sum(_percent(j) for j in self.followed) / len(self.followed)
        if self.tracker is not None and self.tracker.children:
            return 100.0 if self.job.state is JobState.COMPLETED else self.tracker.percent
        return _percent(self.job)

    @property
    def message(self) -> str:
        if self.followed and not self.finished:
            done = sum(j.state.is_finished for j in self.followed)
            return (
                f"{done}/{len(self.followed)} done"
                + "".join(f" · {j.progress.message}" for j in self.followed if j.state is JobState.RUNNING)[
                    :200
                ]
            )
        if self.finished or self.tracker is None or not self.tracker.phases:
            return job_message(self.job).plain
        return " · ".join(f"{p.name} {p.done:g}/{p.total:g}" for p in self.tracker.phases if p.total)


def _percent(job: Job) -> float:
    return 100.0 if job.state is JobState.COMPLETED else job.progress.percent


class LiveBoard:
    """One progress bar per watched job, coloured by state, redrawn on every update."""

    def __init__(self, out: Console) -> None:
        self._live = Live(console=out, auto_refresh=False, transient=False)

    def __enter__(self) -> LiveBoard:
        self._live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.__exit__(kind, exc, tb)

    def update(self, rows: Sequence[BoardRow], elapsed: float) -> None:
        board = Table.grid(padding=(0, 1))
        for row in rows:
            style = STATE_STYLES.get(row.state, "")
            bar = ProgressBar(
                total=100, completed=row.percent, width=24, complete_style=style, finished_style=style
            )
            label = Text.assemble((row.label, "bold"), "  ", (row.message, style or "default"))
            board.add_row(Text(f"{row.state:<9}", style=style), bar, f"{row.percent:3.0f}%", label)
        finished = sum(row.finished for row in rows)
        board.add_row("", "", "", Text(f"{finished}/{len(rows)} finished · {elapsed:.1f}s", style="dim"))
        self._live.update(board, refresh=True)


class PlainLines:
    """For pipes and CI: a status line per second at most, skipped when nothing moved."""

    def __init__(self, out: Console) -> None:
        self._out = out
        self._last_line = ""
        self._last_at = 0.0

    def __enter__(self) -> PlainLines:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, rows: Sequence[BoardRow], elapsed: float) -> None:
        finished = sum(row.finished for row in rows)
        running = [f"{row.job.type} {row.percent:.0f}%" for row in rows if not row.finished]
        line = f"{finished}/{len(rows)} finished"
        if running:
            line += " · running: " + ", ".join(running)
        now = time.monotonic()
        done = finished == len(rows)
        if line != self._last_line and (done or now - self._last_at >= PLAIN_INTERVAL):
            self._out.print(f"[{elapsed:5.1f}s] {line}", markup=False, highlight=False, soft_wrap=True)
            self._last_line, self._last_at = line, now
