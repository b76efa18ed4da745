-- Custom integrations keep their provider definition; connect attempts (OAuth round
-- trips) and one-time connect links.
ALTER TABLE project_integrations ADD COLUMN custom_spec TEXT;

CREATE TABLE connect_sessions (
    id                 UUID PRIMARY KEY,
    project_id         UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_seq           BIGINT NOT NULL REFERENCES users (seq) ON DELETE CASCADE,
    integration_id     UUID NOT NULL REFERENCES project_integrations (id) ON DELETE CASCADE,
    client_session_id  TEXT,
    secrets_sealed     TEXT NOT NULL,
    origin             TEXT,
    options            TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
    credential_id      UUID,
    error_code         TEXT,
    error_message      TEXT,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    consumed_at        BIGINT
);
CREATE INDEX connect_sessions_client ON connect_sessions (user_seq, client_session_id);
CREATE INDEX connect_sessions_expiry ON connect_sessions (expires_at);

CREATE TABLE connect_links (
    token_hash      TEXT PRIMARY KEY,
    project_id      UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_seq        BIGINT NOT NULL REFERENCES users (seq) ON DELETE CASCADE,
    integration_id  UUID NOT NULL REFERENCES project_integrations (id) ON DELETE CASCADE,
    return_url      TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);
CREATE INDEX connect_links_expiry ON connect_links (expires_at);
