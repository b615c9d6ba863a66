"""How `conveyor demo` shows its jobs: a live board on a terminal, sparse plain lines elsewhere.

CI logs keep every line, so off a terminal the demo prints at most one line a
second, and only when something changed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ..job import Job, JobState
from .output import STATE_STYLES, job_message

PLAIN_INTERVAL = 1.0


def _percent(job: Job) -> float:
    return 100.0 if job.state is JobState.COMPLETED else job.progress.percent


def counts_text(jobs: Sequence[Job]) -> str:
    counts = Counter(j.display_state for j in jobs)
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


class LiveBoard:
    """One progress bar per job, coloured by state, redrawn on every update."""

    def __init__(self, out: Console) -> None:
        self._live = Live(console=out, auto_refresh=False, transient=False)

    def __enter__(self) -> LiveBoard:
        self._live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.__exit__(kind, exc, tb)

    def update(self, jobs: Sequence[Job], elapsed: float) -> None:
        board = Table.grid(padding=(0, 1))
        for job in jobs:
            style = STATE_STYLES.get(job.display_state, "")
            bar = ProgressBar(
                total=100, completed=_percent(job), width=24, complete_style=style, finished_style=style
            )
            label = Text.assemble((job.type, "bold"), "  ", (job_message(job), style or "default"))
            board.add_row(Text(f"{job.display_state:<9}", style=style), bar, f"{_percent(job):3.0f}%", label)
        finished = sum(j.state.is_finished for j in jobs)
        board.add_row("", "", "", Text(f"{finished}/{len(jobs)} finished · {elapsed:.1f}s", style="dim"))
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

    def update(self, jobs: Sequence[Job], elapsed: float) -> None:
        finished = sum(j.state.is_finished for j in jobs)
        running = [f"{j.type} {_percent(j):.0f}%" for j in jobs if j.state is JobState.RUNNING]
        line = f"{finished}/{len(jobs)} finished ({counts_text(jobs)})"
        if running:
            line += " · running: " + ", ".join(running)
        now = time.monotonic()
        done = finished == len(jobs)
        if line != self._last_line and (done or now - self._last_at >= PLAIN_INTERVAL):
            self._out.print(f"[{elapsed:5.1f}s] {line}", markup=False, highlight=False, soft_wrap=True)
            self._last_line, self._last_at = line, now
