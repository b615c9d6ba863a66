-- Job events for live views, written by triggers in the transaction of the change itself.
-- conveyor_event_clock holds the time of the transaction being written (each write
-- stamps it first; see SQLiteConnection.write) and how many events to keep.
CREATE TABLE conveyor_events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT    NOT NULL,
    job_id  TEXT    NOT NULL,
    type    TEXT    NOT NULL,
    queue   TEXT    NOT NULL,
    tenant  TEXT,
    state   TEXT    NOT NULL,
    percent REAL    NOT NULL,
    message TEXT,
    at      REAL
);

CREATE TABLE conveyor_event_clock (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    now  REAL,
    keep INTEGER NOT NULL
);
INSERT INTO conveyor_event_clock (id, now, keep) VALUES (1, NULL, 10000);

CREATE TRIGGER conveyor_events_trim AFTER INSERT ON conveyor_events
BEGIN
    DELETE FROM conveyor_events WHERE seq <= NEW.seq - (SELECT keep FROM conveyor_event_clock);
END;

CREATE TRIGGER conveyor_events_added AFTER INSERT ON conveyor_jobs
BEGIN
    INSERT INTO conveyor_events (kind, job_id, type, queue, tenant, state, percent, message, at)
    VALUES ('added', NEW.id, NEW.type, NEW.queue, NEW.tenant, NEW.state, NEW.progress_percent,
            NEW.progress_message, NEW.created_at);
END;

-- A scheduled job becoming due, or a debounced one moving its run time, is no event.
CREATE TRIGGER conveyor_events_state AFTER UPDATE OF state ON conveyor_jobs
WHEN OLD.state IS NOT NEW.state AND OLD.state || '>' || NEW.state NOT IN ('scheduled>pending', 'pending>scheduled')
BEGIN
    INSERT INTO conveyor_events (kind, job_id, type, queue, tenant, state, percent, message, at)
    VALUES (
        CASE
            WHEN NEW.state = 'running' THEN 'started'
            WHEN NEW.state = 'waiting_children' THEN 'waiting'
            WHEN NEW.state IN ('completed', 'failed', 'cancelled') THEN NEW.state
            WHEN OLD.state = 'running' THEN 'retrying'
            ELSE 'requeued'
        END,
        NEW.id, NEW.type, NEW.queue, NEW.tenant, NEW.state, NEW.progress_percent,
        NEW.progress_message, (SELECT now FROM conveyor_event_clock)
    );
END;

CREATE TRIGGER conveyor_events_progress AFTER UPDATE OF progress_percent, progress_message, progress_step
ON conveyor_jobs
WHEN NEW.state = 'running' AND OLD.state = 'running' AND (
    NEW.progress_percent IS NOT OLD.progress_percent
    OR NEW.progress_message IS NOT OLD.progress_message
    OR NEW.progress_step IS NOT OLD.progress_step
)
BEGIN
    INSERT INTO conveyor_events (kind, job_id, type, queue, tenant, state, percent, message, at)
    VALUES ('progress', NEW.id, NEW.type, NEW.queue, NEW.tenant, NEW.state, NEW.progress_percent,
            NEW.progress_message, (SELECT now FROM conveyor_event_clock));
END;
