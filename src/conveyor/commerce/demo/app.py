"""The demo's Conveyor app, loaded by `conveyor demo` and by the worker and API processes it starts.

Queue concurrency follows the seeds: one supplier sync at a time, three
family jobs, ten image jobs, five store jobs.
"""

from __future__ import annotations

import os

from conveyor import Conveyor
from conveyor.commerce.store_jobs import STORE_CONCURRENCY, STORE_QUEUE
from conveyor.commerce.suppliers import QUEUE_CONCURRENCY

from .services import register_all

DEFAULT_JOBS_URL = "sqlite:///.conveyor-demo/jobs.db"

app = Conveyor(
    DEFAULT_JOBS_URL, grace_seconds=5.0, concurrency={**QUEUE_CONCURRENCY, STORE_QUEUE: STORE_CONCURRENCY}
)
services = register_all(app, os.environ)
