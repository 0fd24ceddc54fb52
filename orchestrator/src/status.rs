//! The lifecycle state of an operation.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an operation is in its lifecycle: `PENDING → RUNNING → COMPLETED | FAILED | CANCELLED`.
///
/// A `PENDING` operation may also go straight to `CANCELLED` (cancelled before it ran) or
/// `FAILED`. Terminal states never change again.
///
/// # Examples
///
/// ```
/// use orchestrator::OperationStatus;
///
/// assert!(OperationStatus::Running.is_active());
/// assert!(OperationStatus::Cancelled.is_terminal());
/// assert!(OperationStatus::Pending.can_become(OperationStatus::Running));
/// assert!(!OperationStatus::Completed.can_become(OperationStatus::Running));
/// assert_eq!(serde_json::to_string(&OperationStatus::Running)?, "\"RUNNING\"");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
pub enum OperationStatus {
    /// Registered, waiting to run (for example behind a concurrency limit).
    Pending,
    /// Running.
    Running,
    /// Finished successfully.
    Completed,
    /// Finished with an error, a panic or a missed deadline.
    Failed,
    /// Stopped by a cancellation.
    Cancelled,
}

impl OperationStatus {
    /// All statuses, in lifecycle order.
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    /// `true` for `COMPLETED`, `FAILED` and `CANCELLED`.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// `true` for `PENDING` and `RUNNING`.
    pub const fn is_active(self) -> bool {
        !self.is_terminal()
    }

    /// Whether the state machine allows a transition from `self` to `next`.
    pub const fn can_become(self, next: Self) -> bool {
        matches!(
            (self, next),
            (
                Self::Pending,
                Self::Running | Self::Failed | Self::Cancelled
            ) | (
                Self::Running,
                Self::Completed | Self::Failed | Self::Cancelled
            )
        )
    }

    /// The wire name, e.g. `"RUNNING"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub(crate) const fn to_u8(self) -> u8 {
        self as u8
    }

    pub(crate) const fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Pending,
            1 => Self::Running,
            2 => Self::Completed,
            3 => Self::Failed,
            _ => Self::Cancelled,
        }
    }
}

impl fmt::Display for OperationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not an [`OperationStatus`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown operation status {0:?} (expected PENDING, RUNNING, COMPLETED, FAILED or CANCELLED)"
)]
pub struct InvalidStatus(String);

impl std::str::FromStr for OperationStatus {
    type Err = InvalidStatus;

    /// Parses a status name, case-insensitively (`running`, `RUNNING`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| InvalidStatus(s.chars().take(64).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::OperationStatus::{self, *};

    #[test]
    fn transition_table() {
        let allowed = [
            (Pending, Running),
            (Pending, Failed),
            (Pending, Cancelled),
            (Running, Completed),
            (Running, Failed),
            (Running, Cancelled),
        ];
        for from in OperationStatus::ALL {
            for to in OperationStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn u8_round_trip_and_parse() {
        for st in OperationStatus::ALL {
            assert_eq!(OperationStatus::from_u8(st.to_u8()), st);
            assert_eq!(
                st.as_str().to_lowercase().parse::<OperationStatus>(),
                Ok(st)
            );
        }
        assert!("DONE".parse::<OperationStatus>().is_err());
    }
}
