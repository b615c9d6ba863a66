-- Job events for live views, written by triggers in the transaction of the change itself.
-- conveyor_event_time() (the engine's time of the change) and conveyor_events_max() are
-- functions every Conveyor connection registers (see EventConnection).
CREATE TABLE conveyor_events (
    seq     INTEGER PRIMARY KEY,  -- rowid: max + 1, and trimming never removes the newest row
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

-- Trimmed every 64th event, which costs less than one delete per event: the table
-- holds from events_max to events_max + 63 events.
CREATE TRIGGER conveyor_events_trim AFTER INSERT ON conveyor_events WHEN NEW.seq % 64 = 0
BEGIN
    DELETE FROM conveyor_events WHERE seq <= NEW.seq - conveyor_events_max();
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
        NEW.progress_message, conveyor_event_time()
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
            NEW.progress_message, conveyor_event_time());
END;
