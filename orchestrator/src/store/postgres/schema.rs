//! The PostgreSQL schema, versioned in table `store_schema`.

/// The schema version this build writes (table `store_schema`).
pub(super) const SCHEMA_VERSION: i64 = 1;

/// `MIGRATIONS[v]` takes the schema from version `v` to `v + 1`.
pub(super) const MIGRATIONS: [&str; 1] = [r"
CREATE TABLE instances (
    id               TEXT PRIMARY KEY,
    lease_expires_at BIGINT NOT NULL
);
CREATE TABLE operations (
    seq                 BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id                  TEXT PRIMARY KEY,
    operation_type      TEXT NOT NULL,
    description         TEXT NOT NULL,
    status              TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    started_at          BIGINT,
    completed_at        BIGINT,
    progress            TEXT NOT NULL,
    metadata            TEXT NOT NULL,
    error_message       TEXT,
    result_summary      TEXT,
    parent_id           TEXT,
    cancel_reason       TEXT,
    cancel_requested_at BIGINT,
    owner               TEXT NOT NULL,
    attempt             BIGINT NOT NULL,
    metrics_next        BIGINT NOT NULL DEFAULT 0,
    host_url            TEXT,
    host_operation_id   TEXT,
    checkpoint          TEXT,
    checkpoint_step     BIGINT,
    checkpoint_at       BIGINT
);
CREATE INDEX operations_newest ON operations (created_at DESC, seq DESC);
CREATE INDEX operations_active_owner ON operations (owner)
    WHERE status IN ('PENDING', 'RUNNING');
CREATE INDEX operations_finished ON operations (completed_at)
    WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED');
CREATE INDEX operations_children ON operations (parent_id, created_at DESC)
    WHERE parent_id IS NOT NULL;
CREATE TABLE operation_labels (
    operation_id TEXT NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    value        TEXT NOT NULL,
    PRIMARY KEY (operation_id, key)
);
CREATE INDEX operation_labels_value ON operation_labels (key, value);
CREATE TABLE operation_metrics (
    operation_id TEXT NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    idx          BIGINT NOT NULL,
    record       TEXT NOT NULL,
    PRIMARY KEY (operation_id, idx)
);
"];
