-- Dashboard sessions. The cookie carries a random id; only its SHA-256 is stored.
-- `admin` sessions may have no project yet (the admin picks one); secret-key sessions
-- name the project and the key they logged in with.
CREATE TABLE dashboard_sessions (
    id_hash        TEXT PRIMARY KEY,
    project_id     TEXT REFERENCES projects (id) ON DELETE CASCADE,
    admin          INTEGER NOT NULL,
    secret_key_id  TEXT,
    csrf_token     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_at);

