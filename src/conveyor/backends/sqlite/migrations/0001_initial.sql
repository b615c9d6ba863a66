-- Jobs, their failed attempts and log lines, paused queues and live workers.
-- seq gives FIFO order within a priority and stable cursors (never reused).
CREATE TABLE conveyor_jobs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    type             TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    priority         INTEGER NOT NULL,
    payload          TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    timeout          REAL,
    run_at           REAL    NOT NULL,
    created_at       REAL    NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    lease_until      REAL,
    worker_id        TEXT,
    progress_percent REAL    NOT NULL DEFAULT 0,
    progress_message TEXT,
    progress_step    TEXT,
    result           TEXT,
    error            TEXT,
    dedup_key        TEXT,
    tenant           TEXT,
    user_id          TEXT,
    tags             TEXT,
    parent_id        TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);

-- The claim path: ready jobs of one queue in priority, then FIFO, order.
CREATE INDEX ix_conveyor_jobs_ready ON conveyor_jobs (queue, priority, seq) WHERE state = 'pending';
CREATE INDEX ix_conveyor_jobs_due ON conveyor_jobs (run_at) WHERE state = 'scheduled';
CREATE INDEX ix_conveyor_jobs_leases ON conveyor_jobs (lease_until) WHERE state = 'running';
CREATE INDEX ix_conveyor_jobs_finished ON conveyor_jobs (finished_at)
    WHERE state IN ('completed', 'failed', 'cancelled');
CREATE INDEX ix_conveyor_jobs_queue_state ON conveyor_jobs (queue, state);
CREATE INDEX ix_conveyor_jobs_tenant ON conveyor_jobs (tenant, seq) WHERE tenant IS NOT NULL;
CREATE INDEX ix_conveyor_jobs_user ON conveyor_jobs (user_id, seq) WHERE user_id IS NOT NULL;
-- Dedup: at most one live job per key and queue. The partial unique index makes the check atomic.
CREATE UNIQUE INDEX ux_conveyor_jobs_dedup ON conveyor_jobs (queue, dedup_key)
    WHERE dedup_key IS NOT NULL AND state IN ('pending', 'scheduled', 'running', 'waiting_children');

CREATE TABLE conveyor_job_errors (
    id        INTEGER PRIMARY KEY,
    job_id    TEXT    NOT NULL,
    attempt   INTEGER NOT NULL,
    at        REAL    NOT NULL,
    type      TEXT    NOT NULL,
    message   TEXT    NOT NULL,
    traceback TEXT
);
CREATE INDEX ix_conveyor_job_errors_job ON conveyor_job_errors (job_id);

CREATE TABLE conveyor_logs (
    id     INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    at     REAL NOT NULL,
    line   TEXT NOT NULL
);
CREATE INDEX ix_conveyor_logs_job ON conveyor_logs (job_id);

CREATE TRIGGER conveyor_jobs_cascade AFTER DELETE ON conveyor_jobs
BEGIN
    DELETE FROM conveyor_job_errors WHERE job_id = OLD.id;
    DELETE FROM conveyor_logs WHERE job_id = OLD.id;
END;

CREATE TABLE conveyor_paused (
    queue TEXT PRIMARY KEY
);

CREATE TABLE conveyor_workers (
    id        TEXT PRIMARY KEY,
    info      TEXT NOT NULL,
    last_seen REAL NOT NULL
);
