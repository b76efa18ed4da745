-- Issue #7: secret metadata values, project policies, the event outbox, webhook
-- endpoints, deliveries and their attempts, and the audit log.

-- The user's secret metadata values, sealed together under the master key; `meta` holds
-- only their masks.
ALTER TABLE users ADD COLUMN secrets_sealed TEXT;

CREATE TABLE project_policies (
    project_id  UUID PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    document    JSONB NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- The outbox: written in the same transaction as the change it reports.
CREATE TABLE events (
    id          UUID PRIMARY KEY,
    project_id  UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    event_type  TEXT NOT NULL,
    payload     JSONB NOT NULL,
    created_at  BIGINT NOT NULL,
    fanned_out  BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX events_project ON events (project_id, id);
CREATE INDEX events_unfanned ON events (id) WHERE NOT fanned_out;
CREATE INDEX events_created ON events (created_at);

CREATE TABLE webhook_endpoints (
    id                          UUID PRIMARY KEY,
    project_id                  UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    url                         TEXT NOT NULL,
    description                 TEXT NOT NULL,
    event_types                 TEXT NOT NULL, -- JSON array of event types; [] means all
    secret_sealed               TEXT NOT NULL,
    previous_secret_sealed      TEXT,
    previous_secret_expires_at  BIGINT,
    disabled_at                 BIGINT,
    disabled_reason             TEXT,
    consecutive_failures        INTEGER NOT NULL DEFAULT 0,
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_project ON webhook_endpoints (project_id, created_at);

CREATE TABLE webhook_deliveries (
    id                UUID PRIMARY KEY,
    project_id        UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    event_id          UUID NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    endpoint_id       UUID NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    status            TEXT NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT NOT NULL,
    lease_holder      TEXT,
    lease_until       BIGINT,
    last_status_code  INTEGER,
    last_error        TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'PENDING';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id);

-- The delivery log.
CREATE TABLE webhook_attempts (
    id                UUID PRIMARY KEY,
    delivery_id       UUID NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt           INTEGER NOT NULL,
    started_at        BIGINT NOT NULL,
    duration_ms       BIGINT NOT NULL,
    status_code       INTEGER,
    error             TEXT,
    response_excerpt  TEXT
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, started_at);

CREATE TABLE audit_log (
    id             UUID PRIMARY KEY,
    project_id     UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    at             BIGINT NOT NULL,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    -- Compared bytewise (COLLATE "C"), so a target prefix is a btree range:
    -- `>= prefix AND < prefix || U+10FFFF`.
    target         TEXT COLLATE "C" NOT NULL,
    before_digest  TEXT,
    after_digest   TEXT,
    status         INTEGER NOT NULL
);
CREATE INDEX audit_log_project ON audit_log (project_id, id);
CREATE INDEX audit_log_actor ON audit_log (project_id, actor, id);
CREATE INDEX audit_log_target ON audit_log (project_id, target, id);
