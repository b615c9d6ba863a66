"""Throughput and success-rate trends as plain SVG geometry: no chart library, no script.

Finished jobs are bucketed by the hour they finished in; each bucket becomes
a stacked bar (completed over failed) and a point on the success-rate line.
The templates draw the shapes, so every label goes through autoescape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ..job import Job, JobState

WIDTH = 720
HEIGHT = 160
PAD = 24


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    done_y: float
    done_h: float
    failed_y: float
    failed_h: float
    title: str


@dataclass(frozen=True, slots=True)
class Trend:
    bars: list[Bar]
    rate_points: str  # SVG polyline points of the success rate, hours without jobs left out
    peak: int
    first_label: str
    last_label: str
    width: int = WIDTH
    height: int = HEIGHT
    pad: int = PAD


def trend(jobs: Sequence[Job], now: float, hours: int = 24, bucket: float = 3600.0) -> Trend:
    start = now - hours * bucket
    done = [0] * hours
    failed = [0] * hours
    for job in jobs:
        if job.finished_at is None or job.finished_at < start:
            continue
        i = min(hours - 1, int((job.finished_at - start) // bucket))
        if job.state is JobState.COMPLETED:
            done[i] += 1
        elif job.state is JobState.FAILED:
            failed[i] += 1
    peak = max([d + f for d, f in zip(done, failed, strict=True)] + [1])
    inner = HEIGHT - 2 * PAD
    step = (WIDTH - 2 * PAD) / hours
    bars: list[Bar] = []
    points: list[str] = []
    for i in range(hours):
        x = PAD + i * step
        done_h = inner * done[i] / peak
        failed_h = inner * failed[i] / peak
        base = HEIGHT - PAD
        at = _hour(start + i * bucket)
        bars.append(
            Bar(
                x=round(x + 1, 1),
                width=round(step - 2, 1),
                done_y=round(base - done_h, 1),
                done_h=round(done_h, 1),
                failed_y=round(base - done_h - failed_h, 1),
                failed_h=round(failed_h, 1),
                title=f"{at}: {done[i]} completed, {failed[i]} failed",
            )
        )
        finished = done[i] + failed[i]
        if finished:
            y = base - inner * done[i] / finished
            points.append(f"{x + step / 2:.1f},{y:.1f}")
    return Trend(bars, " ".join(points), peak, _hour(start), _hour(now))


def _hour(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%d %b %H:00")
