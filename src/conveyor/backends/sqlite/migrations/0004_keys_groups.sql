-- Per-key rate limits, breakers and pauses; per-group concurrency; fair claiming; throttled dedup.
ALTER TABLE conveyor_jobs ADD COLUMN rate_key TEXT;
ALTER TABLE conveyor_jobs ADD COLUMN rate_limit INTEGER;
ALTER TABLE conveyor_jobs ADD COLUMN rate_per REAL;
ALTER TABLE conveyor_jobs ADD COLUMN group_key TEXT;
ALTER TABLE conveyor_jobs ADD COLUMN group_limit INTEGER;

CREATE INDEX ix_conveyor_jobs_running_groups ON conveyor_jobs (group_key)
    WHERE state = 'running' AND group_key IS NOT NULL;

CREATE TABLE conveyor_keys (
    key           TEXT PRIMARY KEY,
    capacity      REAL,
    per           REAL,
    tokens        REAL NOT NULL DEFAULT 0,
    updated_at    REAL NOT NULL DEFAULT 0,
    blocked_until REAL NOT NULL DEFAULT 0,
    paused        INTEGER NOT NULL DEFAULT 0,
    failures      INTEGER NOT NULL DEFAULT 0,
    breaker       TEXT NOT NULL DEFAULT 'closed',
    probe_job     TEXT
);

CREATE TABLE conveyor_throttle (
    queue      TEXT NOT NULL,
    dedup_key  TEXT NOT NULL,
    job_id     TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (queue, dedup_key)
);
