-- Deployed workflows (every deploy a new version), their executions (the queue: leased by
-- workers), and each execution's journal of step results.
CREATE TABLE workflow_versions (
    project_id    UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    workflow_id   TEXT COLLATE "C" NOT NULL,
    version       BIGINT NOT NULL,
    integration   TEXT NOT NULL,
    event         TEXT,
    trigger_kind  TEXT NOT NULL,
    definition    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    is_current    BOOLEAN NOT NULL,
    PRIMARY KEY (project_id, workflow_id, version)
);
CREATE UNIQUE INDEX workflow_versions_current ON workflow_versions (project_id, workflow_id)
    WHERE is_current;

CREATE TABLE executions (
    id                UUID PRIMARY KEY,
    project_id        UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_seq          BIGINT NOT NULL REFERENCES users (seq) ON DELETE CASCADE,
    workflow_id       TEXT NOT NULL,
    workflow_version  BIGINT NOT NULL,
    integration       TEXT NOT NULL,
    credential_id     UUID,
    status            TEXT NOT NULL,
    trigger           TEXT NOT NULL,
    settings          TEXT NOT NULL,
    output            TEXT,
    error             TEXT,
    response          TEXT,
    runs              INTEGER NOT NULL DEFAULT 0,
    next_run_at       BIGINT NOT NULL,
    lease_holder      TEXT,
    lease_until       BIGINT,
    created_at        BIGINT NOT NULL,
    started_at        BIGINT,
    finished_at       BIGINT
);
-- Workers look for due work among unfinished executions only.
CREATE INDEX executions_due ON executions (next_run_at)
    WHERE status IN ('QUEUED', 'DELAYED', 'EXECUTING');
CREATE INDEX executions_user ON executions (project_id, user_seq, created_at);
-- The per-user concurrency limit counts a user's running executions at every claim.
CREATE INDEX executions_running ON executions (user_seq) WHERE status = 'EXECUTING';
CREATE INDEX executions_project ON executions (project_id, created_at);

CREATE TABLE execution_steps (
    execution_id  UUID NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    step_key      TEXT NOT NULL,
    record        TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (execution_id, step_key)
);
