"""Trackers: the progress and error bag of a job tree, derived from the jobs themselves.

Counts are never incremented; they are computed from the states of the jobs
in the tree when it is read, so they match what happened exactly, retries and
crashes included.

- A phase declared on a job (`ctx.set_phases(...)`) counts the descendants
  labelled with it (`options(phase=...)`), each weighing its `weight` (a chunk
  of 10 products weighs 10). Its total is the larger of the declared total and
  the weight of the labelled descendants that exist so far.
- A job's percent: 100 once finished; else the weighted mean of its phases'
  completion if it declares phases; else the weighted mean of its children's
  percents if it has children; else its own reported progress.
- The error bag of a node aggregates, per error kind, the failed jobs and the
  item-level errors (`ctx.bag_error`) of its whole subtree.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from .job import BagEntry, Job, JobState


@dataclass
class PhaseCount:
    name: str
    weight: float
    total: float = 0.0
    done: float = 0.0
    failed: float = 0.0

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, (self.done + self.failed) / self.total)


@dataclass
class TrackerNode:
    job: Job
    percent: float
    phases: list[PhaseCount] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    bag: list[BagEntry] = field(default_factory=list)
    states: Counter[str] = field(default_factory=Counter)  # states of the whole subtree, self included
    children: list[TrackerNode] = field(default_factory=list)

    def find(self, job_id: str) -> TrackerNode | None:
        if self.job.id == job_id:
            return self
        for child in self.children:
            found = child.find(job_id)
            if found is not None:
                return found
        return None


def build_tracker(jobs: Sequence[Job], bag: Sequence[BagEntry]) -> TrackerNode | None:
    """Assemble the tree rooted at the first job whose parent is not among `jobs`."""
    if not jobs:
        return None
    ids = {job.id for job in jobs}
    kids: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        if job.parent_id is not None and job.parent_id in ids:
            kids[job.parent_id].append(job)
    entries: dict[str, list[BagEntry]] = defaultdict(list)
    for entry in bag:
        entries[entry.job_id].append(entry)
    root = next(job for job in jobs if job.parent_id not in ids)
    return _node(root, kids, entries)


def _node(job: Job, kids: dict[str, list[Job]], entries: dict[str, list[BagEntry]]) -> TrackerNode:
    children = [_node(child, kids, entries) for child in kids.get(job.id, [])]
    node = TrackerNode(job=job, percent=0.0, children=children, bag=list(entries.get(job.id, [])))
    node.states[job.state.value] += 1
    if job.state is JobState.FAILED and job.error is not None:
        node.errors[job.error.type] += 1
    for entry in node.bag:
        node.errors[entry.kind] += 1
    for child in children:
        node.states.update(child.states)
        node.errors.update(child.errors)
    node.phases = _phases(job, children)
    node.percent = _percent(job, node.phases, children)
    return node


def _phases(job: Job, children: list[TrackerNode]) -> list[PhaseCount]:
    if not job.phases:
        return []
    counts = {name: PhaseCount(name, spec.weight) for name, spec in job.phases.items()}
    stack = list(children)
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        count = counts.get(node.job.phase or "")
        if count is None:
            continue
        count.total += node.job.weight
        if node.job.state is JobState.COMPLETED:
            count.done += node.job.weight
        elif node.job.state in (JobState.FAILED, JobState.CANCELLED):
            count.failed += node.job.weight
    for name, spec in job.phases.items():
        counts[name].total = max(counts[name].total, spec.total)
    return list(counts.values())


def _percent(job: Job, phases: list[PhaseCount], children: list[TrackerNode]) -> float:
    if job.state.is_finished:
        return 100.0
    if phases:
        weight = sum(p.weight for p in phases)
        return 100.0 * sum(p.weight * p.fraction for p in phases) / weight
    if children:
        weight = sum(c.job.weight for c in children)
        return sum(c.job.weight * c.percent for c in children) / weight
    return job.progress.percent
