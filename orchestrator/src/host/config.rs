//! Choosing a host service from the environment.

use std::time::Duration;

use super::HostService;

/// Why a host service cannot be used, found when the service starts (not at its
/// first operation).
///
/// # Examples
///
/// ```
/// use orchestrator::host::{HostConfigError, HostService};
///
/// let env = |name: &str| (name == "USE_TRAINING_HOST_SERVICE").then(|| "true".to_owned());
/// let err = HostService::from_lookup("training", env).unwrap_err();
/// assert!(matches!(err, HostConfigError::MissingUrl { .. }));
/// assert_eq!(
///     err.to_string(),
///     "USE_TRAINING_HOST_SERVICE is true but TRAINING_HOST_SERVICE_URL is not set",
/// );
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostConfigError {
    /// The flag is set, but not to a boolean.
    #[error("{var} must be true or false, got {value:?}")]
    InvalidFlag {
        /// `USE_{PREFIX}_HOST_SERVICE`.
        var: String,
        /// What it was set to.
        value: String,
    },
    /// The flag is true, but the URL is not set (or empty).
    #[error("{flag} is true but {var} is not set")]
    MissingUrl {
        /// `USE_{PREFIX}_HOST_SERVICE`.
        flag: String,
        /// `{PREFIX}_HOST_SERVICE_URL`.
        var: String,
    },
    /// The URL cannot be used (not `http(s)://host…`, or HTTPS without `client-tls`).
    #[error("{var}: {source}")]
    InvalidUrl {
        /// Where the URL came from (`{PREFIX}_HOST_SERVICE_URL`, or `HostService::new`).
        var: String,
        /// Why.
        #[source]
        source: crate::client::ClientError,
    },
    /// The grace is not a number of seconds.
    #[error("{var} must be a number of seconds, got {value:?}")]
    InvalidGrace {
        /// `{PREFIX}_HOST_SERVICE_GRACE_SECS`.
        var: String,
        /// What it was set to.
        value: String,
    },
    /// The prefix is not a name of letters, digits and `_`.
    #[error("invalid host service prefix {0:?}: use letters, digits and `_`, e.g. TRAINING")]
    InvalidPrefix(String),
}

/// `true`/`false` as operators write them.
fn flag(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "" | "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

impl HostService {
    /// The host service configured by the process environment for `prefix` (e.g.
    /// `TRAINING`, any case): `None` (run locally) unless `USE_{PREFIX}_HOST_SERVICE`
    /// is true, in which case `{PREFIX}_HOST_SERVICE_URL` says where,
    /// `{PREFIX}_HOST_SERVICE_TOKEN`, when set, is sent as a bearer token, and
    /// `{PREFIX}_HOST_SERVICE_GRACE_SECS`, when set, replaces the
    /// [unreachable grace](Self::with_unreachable_grace) (30 s).
    ///
    /// Call it when the service starts, so that a bad configuration stops the
    /// process there rather than failing its first operation.
    ///
    /// # Errors
    ///
    /// [`HostConfigError`]: a flag that is not a boolean, a missing or unusable URL,
    /// a token that cannot be sent, a prefix that is not a name.
    pub fn from_env(prefix: &str) -> Result<Option<Self>, HostConfigError> {
        Self::from_lookup(prefix, |name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env), reading variables through `lookup` (for tests and
    /// for configuration that is not the process environment).
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator::host::HostService;
    ///
    /// let env = |name: &str| match name {
    ///     "USE_TRAINING_HOST_SERVICE" => Some("true".to_owned()),
    ///     "TRAINING_HOST_SERVICE_URL" => Some("http://127.0.0.1:5002".to_owned()),
    ///     _ => None,
    /// };
    /// let host = HostService::from_lookup("TRAINING", env)?.expect("routed");
    /// assert_eq!(host.url(), "http://127.0.0.1:5002");
    /// assert!(HostService::from_lookup("TRAINING", |_| None)?.is_none());
    /// # Ok::<(), orchestrator::host::HostConfigError>(())
    /// ```
    pub fn from_lookup(
        prefix: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, HostConfigError> {
        if prefix.is_empty()
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(HostConfigError::InvalidPrefix(prefix.to_owned()));
        }
        let prefix = prefix.to_ascii_uppercase();
        let flag_var = format!("USE_{prefix}_HOST_SERVICE");
        let url_var = format!("{prefix}_HOST_SERVICE_URL");
        let enabled = match lookup(&flag_var) {
            None => false,
            Some(value) => flag(&value).ok_or_else(|| HostConfigError::InvalidFlag {
                var: flag_var.clone(),
                value,
            })?,
        };
        if !enabled {
            return Ok(None);
        }
        let url = lookup(&url_var)
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| HostConfigError::MissingUrl {
                flag: flag_var,
                var: url_var.clone(),
            })?;
        let invalid = |source| HostConfigError::InvalidUrl {
            var: url_var.clone(),
            source,
        };
        let mut host = Self::connect(url.trim()).map_err(invalid)?;
        if let Some(token) = lookup(&format!("{prefix}_HOST_SERVICE_TOKEN")) {
            host = host.with_bearer_token(&token).map_err(invalid)?;
        }
        let grace_var = format!("{prefix}_HOST_SERVICE_GRACE_SECS");
        if let Some(value) = lookup(&grace_var) {
            let grace = value
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or(HostConfigError::InvalidGrace {
                    var: grace_var,
                    value,
                })?;
            host = host.with_unreachable_grace(grace);
        }
        Ok(Some(host))
    }
}
