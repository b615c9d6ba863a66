"""The demo's Conveyor app: every commerce pipeline, registered against the demo catalog.

`conveyor demo` starts worker and API processes with
`--app conveyor.commerce.demo.app:app`; they learn where the jobs and the
catalog live from the environment the demo hands them, so one module serves
the demo's SQLite default and `--redis` alike.
"""

from __future__ import annotations

import os

from conveyor import Conveyor
from conveyor.commerce.pipelines import register as register_campaigns

CATALOG_URL_ENV = "CONVEYOR_DEMO_CATALOG_URL"
DEFAULT_JOBS_URL = "sqlite:///.conveyor-demo/jobs.db"
DEFAULT_CATALOG_URL = "sqlite:///.conveyor-demo/catalog.db"
STAGGER = 0.2
"""Seconds between a campaign's batches: short, so the demo's campaign ends in seconds, not minutes."""

app = Conveyor(DEFAULT_JOBS_URL, grace_seconds=5.0)
catalog_url = os.environ.get(CATALOG_URL_ENV, DEFAULT_CATALOG_URL)
campaigns = register_campaigns(app, catalog_url=catalog_url, stagger=STAGGER, phase_backoff=(1, 2, 5))
