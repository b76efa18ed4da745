-- Dashboard sessions. The cookie carries a random id; only its SHA-256 is stored.
-- `admin` sessions may have no project yet (the admin picks one); secret-key sessions
-- name the project and the key they logged in with.
CREATE TABLE dashboard_sessions (
    id_hash        TEXT PRIMARY KEY,
    project_id     UUID REFERENCES projects (id) ON DELETE CASCADE,
    admin          BOOLEAN NOT NULL,
    secret_key_id  UUID,
    csrf_token     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_at);
