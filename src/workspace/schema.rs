//! The catalog's schema, as numbered migrations. `PRAGMA user_version` records how far a
//! catalog is; opening it applies the missing steps in one transaction, so two processes
//! opening an old catalog at once migrate it once. A catalog from a newer batchscore is refused
//! rather than misread.

use super::{CatalogError, Workspace};

/// Each step, in order; step `n` takes a catalog from version `n` to `n + 1`. Never edit a
/// released step: add one.
const MIGRATIONS: &[&str] = &[
    // 1: every kind of asset, and jobs with their events.
    r#"
    CREATE TABLE models (
        name TEXT NOT NULL, version TEXT NOT NULL, seq INTEGER NOT NULL,
        created_at TEXT NOT NULL, doc TEXT NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE environments (
        name TEXT NOT NULL, version TEXT NOT NULL, seq INTEGER NOT NULL,
        created_at TEXT NOT NULL, doc TEXT NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE data (
        name TEXT NOT NULL, version TEXT NOT NULL, seq INTEGER NOT NULL,
        created_at TEXT NOT NULL, doc TEXT NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE datastores (
        name TEXT NOT NULL, version TEXT NOT NULL DEFAULT '', seq INTEGER NOT NULL,
        created_at TEXT NOT NULL, doc TEXT NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE batch_endpoints (
        name TEXT NOT NULL, version TEXT NOT NULL DEFAULT '', seq INTEGER NOT NULL,
        created_at TEXT NOT NULL, doc TEXT NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE batch_deployments (
        endpoint TEXT NOT NULL, name TEXT NOT NULL, seq INTEGER NOT NULL,
        created_at TEXT NOT NULL, doc TEXT NOT NULL,
        model_name TEXT, model_version TEXT, environment_name TEXT, environment_version TEXT,
        PRIMARY KEY (endpoint, name)
    );
    CREATE TABLE jobs (
        name TEXT NOT NULL, version TEXT NOT NULL DEFAULT '', seq INTEGER NOT NULL,
        created_at TEXT NOT NULL, doc TEXT NOT NULL,
        endpoint TEXT, deployment TEXT, status TEXT NOT NULL,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (name, version)
    );
    CREATE INDEX models_by_seq ON models (seq);
    CREATE INDEX environments_by_seq ON environments (seq);
    CREATE INDEX data_by_seq ON data (seq);
    CREATE INDEX datastores_by_seq ON datastores (seq);
    CREATE INDEX endpoints_by_seq ON batch_endpoints (seq);
    CREATE INDEX deployments_by_seq ON batch_deployments (seq);
    CREATE INDEX jobs_by_seq ON jobs (seq);
    CREATE INDEX deployments_by_model ON batch_deployments (model_name, model_version);
    CREATE INDEX jobs_by_endpoint ON jobs (endpoint, seq);
    CREATE INDEX jobs_by_status ON jobs (status);
    CREATE TABLE job_events (
        job TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL, line TEXT NOT NULL,
        PRIMARY KEY (job, seq)
    );
    "#,
    // 2: access tokens for `batchscore serve`: only a hash of each is kept.
    r#"
    CREATE TABLE tokens (
        name TEXT NOT NULL, version TEXT NOT NULL DEFAULT '', seq INTEGER NOT NULL,
        created_at TEXT NOT NULL, doc TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        PRIMARY KEY (name, version)
    );
    CREATE INDEX tokens_by_seq ON tokens (seq);
    "#,
    // 3: `Idempotency-Key`s of job submissions, and the job each made.
    r#"
    CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, job TEXT NOT NULL, created_at TEXT NOT NULL);
    "#,
    // 4: compute targets, where a deployment's jobs run their processes.
    r#"
    CREATE TABLE computes (
        name TEXT NOT NULL, version TEXT NOT NULL DEFAULT '', seq INTEGER NOT NULL,
        created_at TEXT NOT NULL, doc TEXT NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE INDEX computes_by_seq ON computes (seq);
    "#,
];

/// The schema version this build writes.
pub const CURRENT: i64 = MIGRATIONS.len() as i64;

/// Brings the catalog to [`CURRENT`], then makes sure the curated assets exist.
pub(super) fn migrate(ws: &mut Workspace) -> Result<(), CatalogError> {
    let seen: i64 = ws.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| ws.sql(e))?;
    if seen > CURRENT {
        return Err(CatalogError::TooNew { found: seen, known: CURRENT });
    }
    if seen < CURRENT {
        ws.write(|tx| {
            // Read again inside the lock: another process may have migrated meanwhile.
            let at: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sqlite)?;
            for (step, sql) in MIGRATIONS.iter().enumerate().skip(at as usize) {
                tx.execute_batch(sql).map_err(sqlite)?;
                tx.pragma_update(None, "user_version", step as i64 + 1).map_err(sqlite)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

fn sqlite(source: rusqlite::Error) -> CatalogError {
    CatalogError::Sqlite { path: "catalog".into(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_catalog_is_migrated_and_a_newer_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::create(dir.path(), "w", None).unwrap();
        let db = ws.db_path().to_path_buf();
        drop(ws);
        // Back to schema 1, as an older batchscore left it.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "DROP TABLE tokens; DROP TABLE idempotency_keys; DROP TABLE computes; PRAGMA user_version = 1;",
        )
        .unwrap();
        drop(conn);
        let ws = Workspace::open(dir.path()).unwrap();
        let version: i64 = ws.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, CURRENT);
        let tokens: i64 = ws.conn.query_row("SELECT COUNT(*) FROM tokens", [], |r| r.get(0)).unwrap();
        assert_eq!(tokens, 0, "step 2 ran");
        ws.conn.pragma_update(None, "user_version", CURRENT + 1).unwrap();
        drop(ws);
        let err = Workspace::open(dir.path()).unwrap_err();
        assert!(matches!(err, CatalogError::TooNew { .. }), "{err}");
    }
}
