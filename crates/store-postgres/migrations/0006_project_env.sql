-- A project's environment variables for workflow templates (`env.NAME`), sealed together
-- under the master key.
CREATE TABLE project_env (
    id          UUID PRIMARY KEY,
    project_id  UUID NOT NULL UNIQUE REFERENCES projects (id) ON DELETE CASCADE,
    sealed      TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
