"""Flows built up front: a tree of jobs added in one atomic call.

Children run first; each parent runs its handler once all of its children have
ended, and can read their results with `await ctx.children()`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .jobtype import BoundJob, JobType


@dataclass(frozen=True)
class Flow:
    job: JobType[Any, Any] | BoundJob[Any, Any]
    payload: Mapping[str, Any] = field(default_factory=dict)
    children: Sequence[Flow] = ()

    @property
    def bound(self) -> BoundJob[Any, Any]:
        return self.job if isinstance(self.job, BoundJob) else self.job.options()

    def walk(self) -> list[tuple[Flow, Flow | None]]:
        """Every node with its parent, parents before their children."""
        nodes: list[tuple[Flow, Flow | None]] = [(self, None)]
        for child in self.children:
            nodes += [(node, parent or self) for node, parent in child.walk()]
        return nodes
