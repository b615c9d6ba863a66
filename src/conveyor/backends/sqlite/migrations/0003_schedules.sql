-- Schedules and their next tick; firing is a compare-and-set on next_run_at.
CREATE TABLE conveyor_schedules (
    name        TEXT PRIMARY KEY,
    job_type    TEXT NOT NULL,
    cron        TEXT,
    every       REAL,
    payload     TEXT NOT NULL,
    options     TEXT NOT NULL,
    jitter      REAL NOT NULL DEFAULT 0,
    missed      TEXT NOT NULL,
    next_run_at REAL NOT NULL,
    last_run_at REAL,
    last_job_id TEXT
);
