//! Fresh databases for the store tests: one per backend, each with a way to open
//! it again (another replica, or the same process restarted).
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use orchestrator::store::{MemoryStore, OperationStore, PostgresStore, SqliteStore};

pub type Store = Arc<dyn OperationStore>;
pub type Reopen = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Store> + Send>> + Send + Sync>;

/// A fresh database: a first handle, a way to open another one on the same data, and
/// whatever must live as long as the test (a temporary file).
pub struct TestDb {
    pub store: Store,
    pub reopen: Reopen,
    pub _guard: Option<Box<dyn Send>>,
}

impl TestDb {
    pub async fn reopen(&self) -> Store {
        (self.reopen)().await
    }
}

pub async fn memory() -> TestDb {
    let shared = MemoryStore::new();
    let store: Store = Arc::new(shared.clone());
    TestDb {
        store,
        reopen: Arc::new(move || {
            let again = shared.clone();
            Box::pin(async move { Arc::new(again) as Store })
        }),
        _guard: None,
    }
}

pub fn always() -> bool {
    true
}

/// A database file in the temp directory, removed (with its WAL files) at the end.
pub struct TempFile(pub std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

pub async fn sqlite() -> TestDb {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "orchestrator-conformance-{}-{}-{}.db",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    ));
    let store: Store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let again = path.clone();
    TestDb {
        store,
        reopen: Arc::new(move || {
            let path = again.clone();
            Box::pin(async move { Arc::new(SqliteStore::open(&path).await.unwrap()) as Store })
        }),
        _guard: Some(Box::new(TempFile(path))),
    }
}

pub const POSTGRES_URL: &str = "ORCHESTRATOR_TEST_POSTGRES_URL";

/// The test database's URL. Unset: the Postgres tests pass without running, except
/// with `CI=true`, where they fail: CI must never skip them silently.
pub fn postgres_url() -> Option<String> {
    match std::env::var(POSTGRES_URL) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{POSTGRES_URL} is not set, and with CI=true the Postgres store tests \
                 must run (.ci/run starts a PostgreSQL and sets it)"
            );
            eprintln!("{POSTGRES_URL} is not set: Postgres store test not run");
            None
        }
    }
}

pub fn postgres_available() -> bool {
    postgres_url().is_some()
}

/// Drops the test's schema at the end (on a thread of its own: `Drop` is sync).
pub struct TempSchema {
    pub url: String,
    pub schema: String,
}

impl Drop for TempSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .ok()?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test schema {}", self.schema);
        }
    }
}

pub async fn postgres() -> TestDb {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let url = postgres_url().expect("checked by postgres_available");
    let schema = format!(
        "conformance_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos()),
    );
    let store: Store = Arc::new(PostgresStore::connect(&url, &schema).await.unwrap());
    let (again_url, again_schema) = (url.clone(), schema.clone());
    TestDb {
        store,
        reopen: Arc::new(move || {
            let (url, schema) = (again_url.clone(), again_schema.clone());
            Box::pin(async move {
                Arc::new(PostgresStore::connect(&url, &schema).await.unwrap()) as Store
            })
        }),
        _guard: Some(Box::new(TempSchema { url, schema })),
    }
}
