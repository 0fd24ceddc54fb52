//! The SQLite schema, versioned by `PRAGMA user_version`, and its migration.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::classify_open_error;
use crate::store::StoreError;

/// The schema version this build writes (`PRAGMA user_version`).
pub(super) const SCHEMA_VERSION: i64 = 1;

/// `MIGRATIONS[v]` takes the schema from version `v` to `v + 1`.
pub(super) const MIGRATIONS: [&str; 1] = [r"
CREATE TABLE instances (
    id               TEXT PRIMARY KEY,
    lease_expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE operations (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    operation_type      TEXT NOT NULL,
    description         TEXT NOT NULL,
    status              TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    started_at          INTEGER,
    completed_at        INTEGER,
    progress            TEXT NOT NULL,
    metadata            TEXT NOT NULL,
    error_message       TEXT,
    result_summary      TEXT,
    parent_id           TEXT,
    cancel_reason       TEXT,
    cancel_requested_at INTEGER,
    owner               TEXT NOT NULL,
    attempt             INTEGER NOT NULL,
    metrics_next        INTEGER NOT NULL DEFAULT 0,
    host_url            TEXT,
    host_operation_id   TEXT,
    checkpoint          TEXT,
    checkpoint_step     INTEGER,
    checkpoint_at       INTEGER
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
) WITHOUT ROWID;
CREATE INDEX operation_labels_value ON operation_labels (key, value);
CREATE TABLE operation_metrics (
    operation_id TEXT NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    idx          INTEGER NOT NULL,
    record       TEXT NOT NULL,
    PRIMARY KEY (operation_id, idx)
) WITHOUT ROWID;
"];

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction; refuses a newer one.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let open_error = |e: rusqlite::Error| classify_open_error(path, e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_error)?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(open_error)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            location: path.display().to_string(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let from = usize::try_from(found.max(0)).unwrap_or(0);
    for step in &MIGRATIONS[from..] {
        tx.execute_batch(step).map_err(open_error)?;
    }
    if found != SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(open_error)?;
    }
    tx.commit().map_err(open_error)
}
