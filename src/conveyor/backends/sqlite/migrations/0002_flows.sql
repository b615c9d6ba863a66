-- Flows and trackers: parent/child bookkeeping, phases, and item-level error bags.
ALTER TABLE conveyor_jobs ADD COLUMN failure_policy TEXT NOT NULL DEFAULT 'fail_parent';
ALTER TABLE conveyor_jobs ADD COLUMN phase TEXT;
ALTER TABLE conveyor_jobs ADD COLUMN weight REAL NOT NULL DEFAULT 1;
ALTER TABLE conveyor_jobs ADD COLUMN phases TEXT;
ALTER TABLE conveyor_jobs ADD COLUMN children_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conveyor_jobs ADD COLUMN children_pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conveyor_jobs ADD COLUMN stage INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conveyor_jobs ADD COLUMN then_action TEXT NOT NULL DEFAULT 'complete';
ALTER TABLE conveyor_jobs ADD COLUMN spawn_key TEXT;

CREATE INDEX ix_conveyor_jobs_parent ON conveyor_jobs (parent_id) WHERE parent_id IS NOT NULL;
-- A retried parent that spawns the same children again gets the same child jobs back.
CREATE UNIQUE INDEX ux_conveyor_jobs_spawn ON conveyor_jobs (parent_id, spawn_key)
    WHERE spawn_key IS NOT NULL;

CREATE TABLE conveyor_bag (
    id      INTEGER PRIMARY KEY,
    job_id  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    item    TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL,
    at      REAL NOT NULL,
    UNIQUE (job_id, kind, item)
);

DROP TRIGGER conveyor_jobs_cascade;
CREATE TRIGGER conveyor_jobs_cascade AFTER DELETE ON conveyor_jobs
BEGIN
    DELETE FROM conveyor_job_errors WHERE job_id = OLD.id;
    DELETE FROM conveyor_logs WHERE job_id = OLD.id;
    DELETE FROM conveyor_bag WHERE job_id = OLD.id;
END;
