CREATE TABLE projects (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX projects_name ON projects (name);

CREATE TABLE signing_keys (
    id              UUID PRIMARY KEY,
    project_id      UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    public_key_pem  TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);
CREATE INDEX signing_keys_project ON signing_keys (project_id, created_at);

CREATE TABLE secret_keys (
    id          UUID PRIMARY KEY,
    project_id  UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX secret_keys_project ON secret_keys (project_id, created_at);

-- `seq` orders users by creation and backs pagination cursors.
-- The *_folded columns hold lower-cased text for case-insensitive prefix search. They
-- compare bytewise (COLLATE "C"), so `>= prefix AND < prefix || U+10FFFF` is a btree range.
CREATE TABLE users (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id      UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL,
    meta            TEXT NOT NULL, -- JSON text, kept byte for byte (JSONB would reorder keys and rewrite numbers)
    user_id_folded  TEXT COLLATE "C" NOT NULL,
    name_folded     TEXT COLLATE "C",
    email_folded    TEXT COLLATE "C",
    suspended       BOOLEAN NOT NULL DEFAULT FALSE,
    version         BIGINT NOT NULL DEFAULT 1,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    last_seen_at    BIGINT,
    UNIQUE (project_id, user_id)
);
CREATE INDEX users_project_seq ON users (project_id, seq);
CREATE INDEX users_user_id_folded ON users (project_id, user_id_folded);
CREATE INDEX users_name_folded ON users (project_id, name_folded);
CREATE INDEX users_email_folded ON users (project_id, email_folded);

-- One row per top-level scalar metadata value, so `meta.<Key>=<value>` is an index seek.
CREATE TABLE user_meta_index (
    project_id  UUID NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    user_seq    BIGINT NOT NULL REFERENCES users (seq) ON DELETE CASCADE,
    PRIMARY KEY (project_id, key, value, user_seq)
);
CREATE INDEX user_meta_index_user ON user_meta_index (user_seq);
