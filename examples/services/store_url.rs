//! `--store URL`: which operation store a server example keeps its operations in.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orchestrator::store::{MemoryStore, OperationStore, PostgresStore, SqliteStore, StoreError};

/// A parsed `--store` value.
///
/// # Examples
///
/// ```
/// use orchestrator_examples::store_url::StoreUrl;
///
/// assert_eq!("memory:".parse::<StoreUrl>(), Ok(StoreUrl::Memory));
/// assert_eq!(
///     "sqlite:orchestrator.db".parse::<StoreUrl>(),
///     Ok(StoreUrl::Sqlite("orchestrator.db".into()))
/// );
/// assert!(matches!("postgres://u@127.0.0.1/db".parse::<StoreUrl>(), Ok(StoreUrl::Postgres(_))));
/// assert!("mysql://x".parse::<StoreUrl>().is_err());
/// assert!("sqlite:".parse::<StoreUrl>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `memory:`: nothing outlives the process.
    Memory,
    /// `sqlite:PATH`: one file, used by this process alone.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`: shared by replicas.
    Postgres(String),
}

/// A `--store` value that is none of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid store URL {0:?}: expected memory:, sqlite:PATH or postgres://USER@HOST:PORT/DATABASE"
)]
pub struct InvalidStoreUrl(String);

impl std::str::FromStr for StoreUrl {
    type Err = InvalidStoreUrl;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "memory:" || s == "memory" {
            return Ok(Self::Memory);
        }
        if let Some(path) = s.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(InvalidStoreUrl(s.to_owned()));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Self::Postgres(s.to_owned()));
        }
        Err(InvalidStoreUrl(s.chars().take(200).collect()))
    }
}

impl std::fmt::Display for StoreUrl {
    /// The URL without a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Memory => f.write_str("memory:"),
            Self::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

impl StoreUrl {
    /// Whether one process alone uses the store (SQLite): its restart then fails
    /// what the previous run left running at once.
    pub const fn is_exclusive(&self) -> bool {
        matches!(self, Self::Sqlite(_))
    }

    /// Opens the store (`schema` for PostgreSQL). A PostgreSQL that cannot be
    /// reached is retried with backoff, each failure logged, for at most `retry`.
    ///
    /// # Errors
    ///
    /// The store's error: a file that cannot be opened, is corrupt or of a newer
    /// schema version (never retried), or a database still unreachable after `retry`.
    pub async fn open(
        &self,
        schema: &str,
        retry: Duration,
    ) -> Result<Arc<dyn OperationStore>, StoreError> {
        match self {
            Self::Memory => Ok(Arc::new(MemoryStore::new())),
            Self::Sqlite(path) => Ok(Arc::new(SqliteStore::open(path).await?)),
            Self::Postgres(url) => {
                let until = Instant::now() + retry;
                let mut backoff = Duration::from_millis(250);
                loop {
                    match PostgresStore::connect(url, schema).await {
                        Ok(store) => return Ok(Arc::new(store)),
                        Err(e @ (StoreError::Connect { .. } | StoreError::Database(_)))
                            if Instant::now() + backoff < until =>
                        {
                            tracing::warn!(store = %self, error = %e, retry_in = ?backoff, "operation store unreachable; retrying");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(2));
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
}
