"""Prometheus metrics read from the backend at each scrape.

Counts live in the backend, shared by every process, so a scrape asks the
backend instead of counting events in this process (which would show only what
this API process saw). Each API app has its own registry: two apps in one
process never mix their numbers, and nothing is registered globally.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..app import Conveyor
from ..stats import Stats
from .views import display_counts


class _Snapshot(Collector):
    """Yields the metrics of the stats handed to it just before the registry is rendered."""

    def __init__(self) -> None:
        self.stats: Stats | None = None

    def collect(self) -> Iterable[Metric]:
        stats = self.stats
        if stats is None:
            return []
        jobs = GaugeMetricFamily(
            "conveyor_jobs",
            "Jobs per queue and display state ('scheduled' excludes 'retrying').",
            labels=["queue", "state"],
        )
        paused = GaugeMetricFamily("conveyor_queue_paused", "1 if the queue is paused.", labels=["queue"])
        for queue in stats.queues:
            for state, n in display_counts(queue).items():
                jobs.add_metric([queue.queue, state], n)
            paused.add_metric([queue.queue], 1 if queue.paused else 0)
        families: list[Metric] = [jobs, paused]
        if stats.success_rate is not None:
            families.append(
                GaugeMetricFamily(
                    "conveyor_success_ratio",
                    "completed / (completed + failed) over the jobs kept in the backend.",
                    value=stats.success_rate,
                )
            )
        families += [
            GaugeMetricFamily("conveyor_workers", "Live workers.", value=len(stats.workers)),
            GaugeMetricFamily(
                "conveyor_jobs_processing", "Jobs running right now.", value=stats.currently_processing
            ),
            GaugeMetricFamily(
                "conveyor_concurrency",
                "The sum of the live workers' concurrency.",
                value=stats.max_concurrency,
            ),
        ]
        return families


class Metrics:
    def __init__(self, app: Conveyor) -> None:
        self.app = app
        self.registry = CollectorRegistry(auto_describe=False)
        self._snapshot = _Snapshot()
        self.registry.register(self._snapshot)

    async def render(self) -> bytes:
        stats = await self.app.stats()
        # No await between setting and rendering, so concurrent scrapes cannot mix snapshots.
        self._snapshot.stats = stats
        return generate_latest(self.registry)
