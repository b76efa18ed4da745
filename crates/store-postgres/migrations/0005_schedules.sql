-- One row per schedule tick that was run: the primary key makes each tick run once,
-- whichever scheduler gets there first, and across restarts.
CREATE TABLE schedule_ticks (
    project_id   UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    workflow_id  TEXT NOT NULL,
    tick_at      BIGINT NOT NULL,
    executions   BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (project_id, workflow_id, tick_at)
);
