-- Integrations a project turns on, the credentials users connect for them, and the
-- credentials' configurations. JSON documents are stored as text.
CREATE TABLE project_integrations (
    id                          TEXT PRIMARY KEY,
    project_id                  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    key                         TEXT NOT NULL,
    oauth_client_id             TEXT,
    oauth_client_secret_sealed  TEXT,
    scopes                      TEXT, -- JSON array of strings, or NULL for the provider's defaults
    active                      INTEGER NOT NULL,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL,
    UNIQUE (project_id, key)
);

-- `refresh_lease_*` hold the single-flight lease on token refreshes across processes.
CREATE TABLE credentials (
    id                     TEXT PRIMARY KEY,
    project_id             TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_seq               INTEGER NOT NULL REFERENCES users (seq) ON DELETE CASCADE,
    integration_id         TEXT NOT NULL REFERENCES project_integrations (id) ON DELETE CASCADE,
    status                 TEXT NOT NULL CHECK (status IN ('VALID', 'INVALID', 'PENDING')),
    provider_id            TEXT,
    provider_data          TEXT NOT NULL,
    secrets_sealed         TEXT NOT NULL,
    expires_at             INTEGER,
    refresh_failure_count  INTEGER NOT NULL DEFAULT 0,
    external_id            TEXT,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    refreshed_at           INTEGER,
    version                INTEGER NOT NULL DEFAULT 1,
    refresh_lease_holder   TEXT,
    refresh_lease_until    INTEGER
);
CREATE INDEX credentials_user ON credentials (project_id, user_seq, created_at);
CREATE INDEX credentials_user_seq ON credentials (user_seq);
CREATE INDEX credentials_integration ON credentials (integration_id);
CREATE UNIQUE INDEX credentials_external_id ON credentials (project_id, user_seq, external_id)
    WHERE external_id IS NOT NULL;

CREATE TABLE credential_configurations (
    id                 TEXT PRIMARY KEY,
    credential_id      TEXT NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
    is_default         INTEGER NOT NULL,
    workflow_settings  TEXT NOT NULL,
    shared_settings    TEXT NOT NULL,
    external_id        TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX credential_configurations_credential ON credential_configurations (credential_id);
-- Every credential has exactly one default configuration.
CREATE UNIQUE INDEX credential_configurations_one_default ON credential_configurations (credential_id)
    WHERE is_default = 1;
